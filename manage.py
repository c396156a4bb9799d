#!/usr/bin/env python
"""One entry point for both services.

    python manage.py migrate --settings=users.settings
    DJANGO_SETTINGS_MODULE=ads.settings python manage.py runserver

Which project a command is for is never guessed: without --settings or
DJANGO_SETTINGS_MODULE it says which settings exist and exits with status 2.
"""

import os
import sys

PROJECT_SETTINGS = {
    "users.settings": "UserService (people, identity, service accounts)",
    "ads.settings": "AdService (ads, nearby search, batch jobs)",
}


def settings_from_argv(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg.startswith("--settings="):
            return arg.split("=", 1)[1]
        if arg == "--settings" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def main() -> None:
    if not (settings_from_argv(sys.argv) or os.environ.get("DJANGO_SETTINGS_MODULE")):
        choices = "\n".join(
            f"  --settings={name:<16} {what}" for name, what in PROJECT_SETTINGS.items()
        )
        sys.stderr.write(
            "manage.py serves two projects; say which one:\n"
            f"{choices}\n"
            "or set DJANGO_SETTINGS_MODULE, e.g. DJANGO_SETTINGS_MODULE=ads.settings.\n"
        )
        sys.exit(2)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
