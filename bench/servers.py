"""The servers a benchmark run measures, started the way the deployment starts them.

Every server is ``fleamarket.deployment.Deployment`` (gunicorn with the deployment's
config file and the s2s_auth TLS worker, 2 workers x GUNICORN_THREADS threads) on free
loopback ports, with its own database and one shared dev PKI:

``plain``    users + ads over plain HTTP (no TLS env): the baseline, and ads → users
             "trusting the network": users runs ``bench.plain.settings``, whose
             previews endpoint needs no authentication (ads sends none)
``tls``      users + ads over TLS with client certificates; ads calls users with a
             service JWT over mTLS (the deployment's default); audit log on SQLite
``nocache``  users over TLS with ``S2S_CACHE_VERIFIED_TOKENS=0``
``pg``       users over TLS with its database (and so the audit log) on PostgreSQL
``background`` users over TLS with ``S2S_AUDIT_WRITE=background`` (audit records of
             reads and refusals written by a thread in batches; the default is
             ``group_commit``: the answer waits for its record's commit)

SQLite databases are prepared once (migrations, demo data, principals, the bench
principal's client secret and API key) and copied; PostgreSQL gets a fresh database,
dropped afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from fleamarket import processes
from fleamarket.deployment import Deployment, ensure_dev_pki

#: The benchmark's own client identity: certificate bench.pem, principal "bench".
CLIENT = "bench"
#: Mechanisms of the TLS servers: the default order plus api_key, so that one server
#: serves every case; each case presents one credential only, so that credential's
#: mechanism is the one used.
MECHANISMS = "service_jwt,http_signature,access_token,api_key,mtls"
SERVER_KINDS = ("plain", "tls", "nocache", "pg", "background")
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
#: A profiled server's gunicorn configuration and where it dumps (bench.profiling).
PROFILE_CONF = "python:bench.profile_conf"
PROFILE_ENV = "BENCH_PROFILE_DIR"
#: users in the ``plain`` server: its previews endpoint open (bench.plain).
PLAIN_USERS_SETTINGS = "bench.plain.settings"


@dataclass
class BenchDeployment(Deployment):
    """A Deployment whose dev PKI is shared by every server of the run."""

    pki: Path | None = None

    @property
    def pki_dir(self) -> Path:
        return self.pki or super().pki_dir

    def spawn(self, service: str, *, profile_dir: Path | None = None) -> None:
        """Start ``service`` and return at once, without waiting for its port (the
        cold-start cases' clients are already knocking). With ``profile_dir``: under
        ``bench.profile_conf``, each worker's profile dumped there when it exits."""
        if profile_dir is None:
            self._spawn(service)
            return
        saved_env, saved_conf = self.extra_env.get(service), processes.GUNICORN_CONF
        self.extra_env[service] = {**(saved_env or {}), PROFILE_ENV: str(profile_dir)}
        processes.GUNICORN_CONF = PROFILE_CONF  # read by start_gunicorn at call time
        try:
            self._spawn(service)
        finally:
            processes.GUNICORN_CONF = saved_conf
            if saved_env is None:
                del self.extra_env[service]
            else:
                self.extra_env[service] = saved_env

    def restart(self, service: str, *, profile_dir: Path | None = None) -> None:
        """Stop ``service`` and start it again (profiled or not); return once it listens."""
        self.stop_service(service)
        self.spawn(service, profile_dir=profile_dir)
        processes.wait_for_port(self.ports[service], self.children[service])


@dataclass
class Server:
    kind: str
    deployment: BenchDeployment
    tls: bool
    database: str  # "SQLite" or "PostgreSQL"

    def port(self, service: str = "users") -> int:
        return self.deployment.ports[service]

    def origin(self, service: str = "users") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port(service)}"


@dataclass
class Fleet:
    """Every server of a run, their PKI and the bench principal's secrets."""

    workdir: Path
    workers: int = 2
    servers: dict[str, Server] = field(default_factory=dict)
    client_secret: str = field(default="", repr=False)
    api_key: str = field(default="", repr=False)
    #: (username, password) of a seeded end user, signed in for the cold-start case.
    end_user: tuple[str, str] = field(default=("", ""), repr=False)
    pg_secrets: dict = field(default_factory=dict, repr=False)
    postgres_error: str = ""
    postgres_url: str = ""
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def pki(self) -> Path:
        return self.workdir / "pki"

    def client_files(self) -> tuple[str, str, str]:
        """(ca.pem, bench.pem, bench.key)."""
        return (
            str(self.pki / "ca.pem"),
            str(self.pki / f"{CLIENT}.pem"),
            str(self.pki / f"{CLIENT}.key"),
        )

    # -- setting up -----------------------------------------------------------------
    def prepare(self, kinds: set[str], log=print) -> None:
        ca = ensure_dev_pki(self.pki)
        cert, key = ca.paths(CLIENT)
        if not (cert.exists() and key.exists()):
            ca.issue(CLIENT, dns_names=(CLIENT, "localhost"))
            ca.write_crl()
        common = {
            "SECRET_KEY": secrets.token_urlsafe(50),  # one key: the secret's HMAC verifies
            "S2S_MECHANISMS": MECHANISMS,
            "S2S_TOKEN_RATE_LIMIT_PER_MINUTE": "100000000",
        }
        template = self.workdir / "template"
        shutil.rmtree(template, ignore_errors=True)  # fresh databases every run
        template.mkdir(parents=True)
        postgres_url = None
        if "pg" in kinds:
            try:
                postgres_url = self._stack.enter_context(postgres_database("users"))
                self.postgres_url = postgres_url
            except Exception as exc:  # no PostgreSQL here: those cases are skipped
                self.postgres_error = f"{type(exc).__name__}: {exc}".strip()
                log(f"  PostgreSQL unavailable, its cases are skipped: {self.postgres_error}")
                kinds = kinds - {"pg"}
        # Prepare the SQLite templates and the PostgreSQL database in parallel.
        both = self._deployment(template, {"users": 0, "ads": 0}, common, "sqlite:///")
        jobs = {"users": both, "ads": both}
        if postgres_url:
            jobs["pg"] = self._deployment(
                self.workdir / "pg", {"users": 0}, common, postgres_url, database=True
            )
        running = {}
        for name, deployment in jobs.items():
            service = "ads" if name == "ads" else "users"
            env = {**deployment.env(service), "DJANGO_SETTINGS_MODULE": f"{service}.settings"}
            running[name] = subprocess.Popen(
                [sys.executable, "-m", "bench.setup_db", service],
                cwd=processes.ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        outputs = {}
        for name, proc in running.items():
            out, err = proc.communicate(timeout=300)
            if proc.returncode != 0:
                raise RuntimeError(f"preparing the {name} database failed:\n{out}{err}")
            outputs[name] = json.loads(out.strip().splitlines()[-1])
        self.client_secret = outputs["users"]["client_secret"]
        self.api_key = outputs["users"]["api_key"]
        self.end_user = (outputs["users"]["end_user"], outputs["users"]["end_user_password"])
        if postgres_url:
            # Its own secret and key: the bench principal was created in that database.
            self.pg_secrets = outputs["pg"]

        for kind in sorted(kinds):
            folder = self.workdir / kind
            if kind == "pg":
                deployment = jobs["pg"]
                deployment.ports = {"users": processes.free_port()}
                self.servers[kind] = Server(kind, deployment, True, "PostgreSQL")
                continue
            services = ("users", "ads") if kind in ("plain", "tls") else ("users",)
            urls = {}
            for service in services:
                db = folder / f"{service}.sqlite3"
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(template / f"{service}.sqlite3", db)
                urls[service] = f"sqlite:///{db}"
            deployment = BenchDeployment(
                var=folder,
                ports={s: processes.free_port() for s in services},
                database_urls=urls,
                workers=self.workers,
                pki=self.pki,
            )
            extra = {s: dict(common) for s in services}
            if kind == "plain":
                users_http = f"http://127.0.0.1:{deployment.ports['users']}"
                # Previews without authentication: both hops of nearby_plain skip auth.
                extra["users"].update(
                    TLS_CERT="", S2S_ISSUER=users_http, DJANGO_SETTINGS_MODULE=PLAIN_USERS_SETTINGS
                )
                extra["ads"].update(
                    TLS_CERT="", USERS_SERVICE_URL=users_http, S2S_ISSUER=users_http
                )
            if kind == "nocache":
                extra["users"]["S2S_CACHE_VERIFIED_TOKENS"] = "0"
            if kind == "background":
                extra["users"]["S2S_AUDIT_WRITE"] = "background"
            deployment.extra_env = extra
            self.servers[kind] = Server(kind, deployment, kind != "plain", "SQLite")

    def _deployment(
        self, folder: Path, ports: dict, common: dict, url: str, database: bool = False
    ) -> BenchDeployment:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "logs").mkdir(exist_ok=True)
        urls = {s: url if database else f"sqlite:///{folder / f'{s}.sqlite3'}" for s in ports}
        return BenchDeployment(
            var=folder,
            ports=dict(ports),
            database_urls=urls,
            workers=self.workers,
            pki=self.pki,
            extra_env={s: dict(common) for s in ports},
        )

    def start(self) -> None:
        for server in self.servers.values():
            (server.deployment.var / "logs").mkdir(parents=True, exist_ok=True)
            server.deployment.start()
            self._stack.callback(server.deployment.stop)

    def secrets_for(self, server: Server) -> tuple[str, str]:
        """(client_secret, api_key) of the bench principal in that server's database."""
        if server.kind == "pg":
            return self.pg_secrets["client_secret"], self.pg_secrets["api_key"]
        return self.client_secret, self.api_key

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def postgres_database(service: str):
    """A fresh PostgreSQL database (like tests/live.py's ``fresh_database``), dropped after.

    The server is ``BENCH_POSTGRES_URL``, else DATABASE_URL when it is PostgreSQL, else
    postgres://postgres@127.0.0.1:5432 (trust authentication).
    """
    import psycopg

    base = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        base = DEFAULT_POSTGRES
    parts = urlsplit(base)
    name = f"bench_{service}_{uuid.uuid4().hex[:12]}"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
