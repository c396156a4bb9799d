#!/usr/bin/env python3
"""Create the compose deployment's secrets (stdlib only; run on the host, once).

    python3 docker/bin/make_secrets.py [--dir var/docker/secrets] [--force]

Writes random values into files that docker/compose.yaml mounts as secrets
(/run/secrets/NAME in the containers). Existing files are kept unless --force.
var/ is never committed (.gitignore) and never sent to the image (.dockerignore).

The directory is mode 0700, so other host users cannot reach the files; the files
themselves are 0644 because compose bind-mounts file secrets with their host mode
and the containers read them as their own (non-root) users.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT / "var" / "docker" / "secrets"
#: The secret files of docker/compose.yaml, and how each value is made.
PASSWORDS = ("postgres_password", "users_db_password", "ads_db_password", "redis_password")
KEYS = ("users_secret_key", "ads_secret_key")
URLS = ("users_database_url", "ads_database_url", "cache_url", "broker_url")
NAMES = PASSWORDS + KEYS + URLS


def values(existing: dict[str, str]) -> dict[str, str]:
    out = dict(existing)
    for name in PASSWORDS:
        out.setdefault(name, secrets.token_urlsafe(32))  # URL-safe: goes into URLs as is
    for name in KEYS:
        out.setdefault(name, secrets.token_urlsafe(50))
    # The URLs are derived from the passwords above, so they always agree.
    for service in ("users", "ads"):
        out[f"{service}_database_url"] = (
            f"postgres://{service}:{out[f'{service}_db_password']}@postgres:5432/{service}"
        )
    # Separate Redis databases: Django's cache.clear() flushes its whole database,
    # which must not take the Celery queues with it.
    out["cache_url"] = f"redis://:{out['redis_password']}@redis:6379/0"
    out["broker_url"] = f"redis://:{out['redis_password']}@redis:6379/1"
    return out


def write(directory: Path, force: bool = False) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    existing = {}
    if not force:
        for name in PASSWORDS + KEYS:
            path = directory / name
            if path.exists():
                existing[name] = path.read_text().strip()
    written = []
    for name, value in values(existing).items():
        path = directory / name
        if path.exists() and path.read_text().strip() == value:
            continue
        tmp = path.with_name(f".{name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        written.append(name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--force", action="store_true", help="replace existing values")
    args = parser.parse_args(argv)
    written = write(args.dir, args.force)
    print(f"secrets in {args.dir}: {', '.join(written) or 'unchanged'}")
    if args.force and written:
        print("changed passwords only apply to a new postgres volume (docker compose down -v)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
