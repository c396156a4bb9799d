"""Prepare one service's database for the benchmark (run in the service's environment).

    DJANGO_SETTINGS_MODULE=users.settings python -m bench.setup_db users

Migrations, the demo data, the deployment's principals and (users) the benchmark's own
principal ``bench`` with scope ``users:read``, a client secret and an API key, and a
fresh password for the seeded end user ``END_USER`` (the cold-start case signs in as
them to call ads with an end user's token). One
process instead of one ``manage.py`` per step: Django starts once. Prints one JSON
line with the secrets, which the harness reads.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import sys

BENCH_PRINCIPAL = "bench"
END_USER = "seller05"


def _call(*args) -> str:
    from django.core.management import call_command

    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def main(service: str) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from fleamarket.deployment import PRINCIPALS

    call_command("migrate", interactive=False, verbosity=0)
    _call("seed_demo")
    result: dict[str, str] = {}
    if service == "users":
        for name, scopes in PRINCIPALS.items():
            _call("s2s_service", "add", name, *[f"--scope={scope}" for scope in scopes])
        out = _call("s2s_service", "add", BENCH_PRINCIPAL, "--scope=users:read")
        match = re.search(r"^client_secret: (\S+)$", out, re.M)
        if not match:
            raise SystemExit(f"no client secret in: {out}")
        result["client_secret"] = match.group(1)
        out = _call("s2s_service", "add-key", BENCH_PRINCIPAL)
        result["api_key"] = re.search(r"^api key for \S+: (\S+)$", out, re.M).group(1)
        from django.contrib.auth import get_user_model

        person = get_user_model().objects.get(username=END_USER)
        result["end_user"] = END_USER
        result["end_user_password"] = secrets.token_urlsafe(16)
        person.set_password(result["end_user_password"])
        person.save(update_fields=["password"])
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:  # the copies must not need the WAL file
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
