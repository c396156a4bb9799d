"""Real processes on loopback for tests: a fresh database, a free port, a server.

Used by every suite that crosses a process boundary. A service started here gets
its own database (a SQLite file in a temporary directory, or a fresh PostgreSQL
database when DATABASE_URL points at PostgreSQL), is migrated and seeded with the
real management commands, and is always stopped and its database dropped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


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


@dataclass
class LiveService:
    name: str
    port: int
    url: str
    env: dict[str, str]
    workdir: Path
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    extra: dict = field(default_factory=dict)

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a management command against this service's database and settings."""
        return subprocess.run(
            [sys.executable, "manage.py", *args, f"--settings={self.name}.settings"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def service_env(service: str, workdir: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_SETTINGS_MODULE", "PYTEST_"))
    }
    env.update(
        {
            "VAR_DIR": str(workdir),
            f"{service.upper()}_DATABASE_URL": database_url,
            "DJANGO_DEBUG": "0",
            "SECRET_KEY": f"live-test-{uuid.uuid4().hex}",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def live_service(
    service: str,
    workdir: Path,
    *,
    seed: bool = True,
    server_args: tuple[str, ...] = (),
    scheme: str = "http",
    env: dict[str, str] | None = None,
) -> Iterator[LiveService]:
    """Start ``service`` ("users" or "ads") under gunicorn on a free loopback port."""
    workdir.mkdir(parents=True, exist_ok=True)
    with fresh_database(service, workdir) as database_url:
        port = free_port()
        live = LiveService(
            name=service,
            port=port,
            url=f"{scheme}://127.0.0.1:{port}",
            env=service_env(service, workdir, database_url, **(env or {})),
            workdir=workdir,
            log_path=workdir / f"{service}.log",
        )
        live.manage("migrate", "--noinput", "-v0")
        if seed:
            live.manage("seed_demo")
        with open(live.log_path, "w") as log:
            live.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    f"{service}.wsgi",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "1",
                    "--threads",
                    "4",
                    *server_args,
                ],
                cwd=ROOT,
                env=live.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(port, live.process)
            yield live
        finally:
            live.stop()
