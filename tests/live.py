"""Real processes on loopback for tests, started the way the deployment starts them.

``live_deployment`` gives each service its own fresh database (a SQLite file in a
temporary directory, or a new PostgreSQL database when DATABASE_URL points at
PostgreSQL), a dev PKI, migrations, demo data and principals, and gunicorn with the
s2s_auth TLS worker on free loopback ports. Everything is stopped and dropped after.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from fleamarket.deployment import Deployment
from fleamarket.processes import free_port
from tests.server_evidence import sections

__all__ = ["free_port", "fresh_database", "live_deployment"]


@contextlib.contextmanager
def fresh_database(service: str, workdir: Path) -> Iterator[str]:
    """A database URL for one live service, dropped afterwards."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{workdir / f'{service}.sqlite3'}"
        return
    import psycopg

    parts = urlsplit(base)
    name = f"live_{service}_{uuid.uuid4().hex[:12]}"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _report_servers(deployment: Deployment) -> None:
    """A start that failed (a service that never answered): its logs and stacks go to
    stderr, which the failed test's report shows."""
    for title, text in sections({"deployment": deployment}):
        print(f"----- {title}\n{text}", file=sys.stderr)


@contextlib.contextmanager
def live_deployment(
    workdir: Path, services: tuple[str, ...] = ("users", "ads"), **options
) -> Iterator[Deployment]:
    """Start ``services`` with fresh databases; yield the running Deployment."""
    workdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        urls = {s: stack.enter_context(fresh_database(s, workdir)) for s in services}
        deployment = Deployment(
            var=workdir,
            ports={s: free_port() for s in services},
            database_urls=urls,
            on_start_failure=_report_servers,
            **options,
        )
        deployment.prepare()
        with deployment:
            yield deployment
