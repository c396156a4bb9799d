"""The local deployment: dev PKI, databases, principals and the running services.

``python -m fleamarket up`` and ``demo`` use it, and so do the end-to-end tests,
so that what is tested is what runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fleamarket import processes
from fleamarket.settings import celery_settings, private_dir, var_dir
from s2s_auth.conf import parse_duration
from s2s_auth.core.ca import CertificateAuthority

TRUST_DOMAIN = "fleamarket.local"
CERT_NAMES = ("users", "ads", "worker", "proxy", "prometheus")
# Least privilege: each caller gets exactly the scopes the deployment needs.
PRINCIPALS: dict[str, tuple[str, ...]] = {
    # users:notify: deal notices, for a user. A users scope is also what lets ads
    # exchange an end user's token for one for users (RFC 8693; nothing else needed).
    "ads": ("users:read", "users:notify"),
    "worker": ("users:read", "users:notify"),
    "proxy": (),  # known, but granted nothing: it only forwards certificates
    "prometheus": ("metrics:read",),  # scrapes /metrics of every service with its certificate
}
#: Principals every service knows (the others are the identity service's, users').
EVERY_SERVICE = ("prometheus",)
#: Certificates no service process renews (the servers' masters and the Celery worker
#: renew their own): ``up`` runs an ``s2s_pki agent`` for each, so that they too outlive
#: ``S2S_CERT_LIFETIME``.
KEPT_BY_AGENT = ("prometheus", "proxy")
DEFAULT_PORTS = {
    "users": int(os.environ.get("FLEAMARKET_USERS_PORT", "8001")),
    "ads": int(os.environ.get("FLEAMARKET_ADS_PORT", "8002")),
}
RENEW_BEFORE = dt.timedelta(hours=2)
#: Validity of the dev CA's CRLs unless S2S_CRL_VALIDITY says: short, so a service cut
#: off from users stops trusting its last CRL within minutes (docs/revocation.md).
CRL_VALIDITY = "5m"


def cert_lifetime() -> dt.timedelta:
    """``S2S_CERT_LIFETIME`` (``90s``, ``1h``, ``24h``), default 24 hours."""
    return parse_duration(os.environ.get("S2S_CERT_LIFETIME") or "24h")


def renew_before(lifetime: dt.timedelta) -> dt.timedelta:
    """Re-issue a certificate with less than this left: two hours, or a third of a
    shorter lifetime (a 90 s certificate is not re-issued on every call)."""
    return min(RENEW_BEFORE, lifetime / 3)


#: The batch jobs' processes: Celery worker and beat, with AdService's code and settings.
JOB_ROLES = ("worker", "beat")


def crl_validity() -> dt.timedelta:
    """``S2S_CRL_VALIDITY``, default :data:`CRL_VALIDITY`."""
    return parse_duration(os.environ.get("S2S_CRL_VALIDITY") or CRL_VALIDITY)


def ensure_dev_pki(
    pki_dir: Path, *, trust_domain: str = TRUST_DOMAIN, crl_url: str | None = None
) -> CertificateAuthority:
    """The dev CA and a current certificate for every service; idempotent.

    A certificate that is missing or expires within :func:`renew_before` is (re)issued
    for ``S2S_CERT_LIFETIME``; the CRL is rewritten, so it is never stale (users, the CA
    host, re-signs it from then on). ``crl_url``: where users publishes the CRLs,
    named in the certificates issued.
    """
    ca = CertificateAuthority(pki_dir, trust_domain, crl_url=crl_url, crl_validity=crl_validity())
    if not ca.initialized:
        ca.init()
    now = dt.datetime.now(dt.UTC)
    lifetime = cert_lifetime()
    hours = lifetime.total_seconds() / 3600
    for name in CERT_NAMES:
        cert_path, key_path = ca.paths(name)
        dns = (name, "localhost")  # the compose service name, and loopback
        if not (cert_path.exists() and key_path.exists()):
            ca.issue(name, dns_names=dns, hours=hours)
        elif ca.load_certificate(name).not_valid_after_utc - now < renew_before(lifetime):
            ca.renew(name, dns_names=dns, hours=hours)
    ca.write_crl()
    return ca


def _secret_file(path: Path) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(50))
    return path


@dataclass
class Deployment:
    """Both services under gunicorn with the s2s_auth TLS worker, on loopback, and
    (``start_jobs``) the Celery worker and beat that run AdService's batch jobs."""

    var: Path = field(default_factory=var_dir)
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    database_urls: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    #: gunicorn worker processes per service: GUNICORN_WORKERS, default 2.
    workers: int = field(default_factory=processes.gunicorn_workers)
    children: dict[str, subprocess.Popen] = field(default_factory=dict)
    #: Celery queue of the jobs (None: the settings' default, "fleamarket"); tests on
    #: a shared Redis give each deployment its own.
    jobs_queue: str | None = None
    #: Called with the deployment when ``start`` fails, before its processes are
    #: stopped (tests report their logs and stacks).
    on_start_failure: Callable[[Deployment], None] | None = None

    @property
    def pki_dir(self) -> Path:
        return Path(os.environ.get("S2S_PKI_DIR") or self.var / "pki")

    def url(self, service: str) -> str:
        return f"https://127.0.0.1:{self.ports[service]}"

    @property
    def crl_url(self) -> str | None:
        """Where users, the identity service and CA host, publishes the CRLs
        (``S2S_CRL_URL`` wins); None without users."""
        if os.environ.get("S2S_CRL_URL"):
            return os.environ["S2S_CRL_URL"]
        return self.url("users") + "/pki/crl" if "users" in self.ports else None

    def ca(self) -> CertificateAuthority:
        """The dev CA as users runs it: certificates name its CRLs, which are signed
        for ``S2S_CRL_VALIDITY``."""
        return CertificateAuthority(
            self.pki_dir, TRUST_DOMAIN, crl_url=self.crl_url, crl_validity=crl_validity()
        )

    def log_path(self, service: str) -> Path:
        return self.var / "logs" / f"{service}.log"

    def env(self, service: str) -> dict[str, str]:
        pki = self.pki_dir
        env = {
            key: value
            for key, value in os.environ.items()
            if key != "DJANGO_SETTINGS_MODULE" and not key.startswith("PYTEST")
        }
        env.update(
            {
                "VAR_DIR": str(self.var),
                "S2S_PKI_DIR": str(pki),
                "DJANGO_DEBUG": "0",
                "SECRET_KEY_FILE": str(_secret_file(self.var / f"{service}.secret_key")),
                "TLS_CERT": str(pki / f"{service}.pem"),
                "TLS_KEY": str(pki / f"{service}.key"),
                "TLS_CA": str(pki / "ca.pem"),
                "S2S_CRL_VALIDITY": os.environ.get("S2S_CRL_VALIDITY") or CRL_VALIDITY,
            }
        )
        if self.crl_url:  # every service fetches users' CRLs (users reads its own)
            env["S2S_CRL_URL"] = self.crl_url
        if service in self.database_urls:
            env[f"{service.upper()}_DATABASE_URL"] = self.database_urls[service]
        if service == "users":
            env["S2S_ISSUER"] = self.url("users")
        if service == "ads":
            env["USERS_SERVICE_URL"] = self.url("users")
            env["S2S_ISSUER"] = self.url("users")
            if self.jobs_queue:
                env["CELERY_TASK_DEFAULT_QUEUE"] = self.jobs_queue
        env.update(self.extra_env.get(service, {}))
        return env

    def jobs_env(self, role: str) -> dict[str, str]:
        """The environment of the Celery ``role`` ("worker" or "beat"): AdService's,
        plus ``extra_env[role]``. The worker calls UserService as "worker"."""
        env = self.env("ads")
        env["JOBS_IDENTITY"] = "worker"
        env.update(self.extra_env.get(role, {}))
        return env

    def manage(self, service: str, *args: str) -> subprocess.CompletedProcess:
        return processes.manage(service, *args, env=self.env(service))

    def prepare(self, *, seed: bool = True) -> None:
        """PKI, migrations (the replay store's cache table with them), demo data and
        the principals UserService knows; local state private (0700/0600)."""
        private_dir(self.var)
        ensure_dev_pki(self.pki_dir, crl_url=self.crl_url)
        private_dir(self.var / "logs")
        for service in self.ports:
            self.manage(service, "migrate", "--noinput", "-v0")
            # The admin's CSS and JS, served by whitenoise from STATIC_ROOT.
            self.manage(service, "collectstatic", "--noinput", "-v0")
            if seed:
                self.manage(service, "seed_demo")
        self.register_principals()
        make_private(self.var)

    def register_principals(self) -> None:
        """The callers' principals at users (the identity service), and those of
        ``EVERY_SERVICE`` (the metrics scraper) at every service too."""
        for name, scopes in PRINCIPALS.items():
            args = [arg for scope in scopes for arg in ("--scope", scope)]
            if name in EVERY_SERVICE:  # authenticates with its certificate only
                for service in self.ports:
                    self.manage(service, "s2s_service", "add", name, *args, "--no-secret")
            else:
                self.manage("users", "s2s_service", "add", name, *args)

    def start(self) -> None:
        for service, port in self.ports.items():
            processes.ensure_port_free(port, f"the {service} service")
        try:
            for service in self.ports:
                self._spawn(service)
            for service, port in self.ports.items():
                processes.wait_for_port(port, self.children[service])
            for service in self.ports:
                self._wait_until_answering(service)
        except BaseException:
            try:
                if self.on_start_failure is not None:
                    self.on_start_failure(self)
            finally:
                self.stop()
            raise

    def _wait_until_answering(self, service: str) -> None:
        """Until a worker of ``service`` answers, not just its master listens."""
        if self.env(service).get("TLS_CERT"):
            url, ca_file = self.url(service), self.pki_dir / "ca.pem"
        else:  # a plain HTTP configuration (the bench's)
            url, ca_file = f"http://127.0.0.1:{self.ports[service]}", None
        processes.wait_until_answering(url, ca_file, self.children[service])

    def _spawn(self, service: str) -> None:
        # Every gunicorn worker counts into files here; /metrics sums them. Emptied
        # first: counters start at zero with the server, as Prometheus expects.
        env = self.env(service)
        # The master's certificate renewal agent reads S2S_AUTH from these settings.
        # (Unless extra_env names another, as the bench's plain users does.)
        env.setdefault("DJANGO_SETTINGS_MODULE", f"{service}.settings")
        metrics_dir = self.var / "metrics" / service
        shutil.rmtree(metrics_dir, ignore_errors=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(private_dir(metrics_dir))
        with processes.signals_deferred():
            self.children[service] = processes.start_gunicorn(
                service,
                self.ports[service],
                env=env,
                log=self.log_path(service),
                workers=self.workers,
            )

    def stop_service(self, name: str) -> None:
        """Stop one running service (or "worker"/"beat"), e.g. to see the others cope."""
        child = self.children.pop(name, None)
        if child is not None:
            _stop_child(name, child)

    def start_service(self, service: str) -> None:
        """Start one stopped service again on its port; return once it listens.

        No free-port check: connections of the stopped server linger in TIME_WAIT,
        which gunicorn (SO_REUSEADDR) ignores, and a real clash makes it exit."""
        self._spawn(service)
        processes.wait_for_port(self.ports[service], self.children[service])

    # -- batch jobs (Celery) -----------------------------------------------------------
    def start_worker(self, *, concurrency: int = 2, timeout: float = 60.0) -> subprocess.Popen:
        """A Celery worker running AdService's jobs; return once it is ready."""
        queue = self.jobs_queue or "fleamarket"
        return self._start_celery(
            "worker",
            [
                "worker",
                "--loglevel=INFO",
                f"--concurrency={concurrency}",
                f"--hostname=jobs-{queue}@%h",
                # No worker-to-worker chatter: nothing here needs it, and it is broadcast.
                "--without-gossip",
                "--without-mingle",
            ],
            ready=" ready.",
            timeout=timeout,
        )

    def start_beat(self, *, timeout: float = 30.0) -> subprocess.Popen:
        """Celery beat: enqueues the jobs on AdService's schedule (CELERY_BEAT_SCHEDULE)."""
        schedule = self.var / "celery" / "beat-schedule"
        schedule.parent.mkdir(parents=True, exist_ok=True)
        return self._start_celery(
            "beat",
            ["beat", "--loglevel=INFO", f"--schedule={schedule}"],
            ready="beat: Starting...",
            timeout=timeout,
        )

    def start_jobs(self) -> None:
        """The worker, then beat."""
        self.start_worker()
        self.start_beat()

    def start_agents(self, names=KEPT_BY_AGENT, *, timeout: float = 60.0) -> None:
        """A renewal agent (``s2s_pki agent --name NAME``, in users' environment) for each
        certificate that no running process renews; return once each has started."""
        for name in names:
            role = f"agent-{name}"
            if role in self.children and self.children[role].poll() is None:
                raise RuntimeError(f"the {role} is already running")
            log = self.log_path(role)
            offset = log.stat().st_size if log.exists() else 0
            env = {**self.env("users"), "DJANGO_SETTINGS_MODULE": "users.settings"}
            with processes.signals_deferred(), processes.open_log(log) as out:
                self.children[role] = subprocess.Popen(
                    [sys.executable, "-u", "manage.py", "s2s_pki", "agent", "--name", name],
                    cwd=processes.ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                _wait_for_log(log, offset, "Renewing ", self.children[role], timeout)
            except BaseException:
                self.stop_service(role)
                raise

    def _start_celery(
        self, role: str, args: list[str], *, ready: str, timeout: float
    ) -> subprocess.Popen:
        if role in self.children and self.children[role].poll() is None:
            raise RuntimeError(f"the {role} is already running")
        log = self.log_path(role)
        offset = log.stat().st_size if log.exists() else 0
        with processes.signals_deferred(), processes.open_log(log) as out:
            child = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "fleamarket.celery", *args],
                cwd=processes.ROOT,
                env=self.jobs_env(role),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.children[role] = child
        try:
            _wait_for_log(log, offset, ready, child, timeout)
        except BaseException:
            self.stop_service(role)
            raise
        return child

    def celery_app(self):
        """A Celery client on the jobs' broker and result backend: to send a job
        (``app.send_task("jobs.expire_stale_ads")``) and wait for its result."""
        from celery import Celery

        conf = celery_settings(self.jobs_env("worker"))
        app = Celery("fleamarket-client", set_as_current=False)
        app.conf.update({key.removeprefix("CELERY_").lower(): value for key, value in conf.items()})
        return app

    def stop(self) -> None:
        """Stop every child; a second Ctrl-C or SIGTERM waits until they are all gone."""
        with processes.signals_deferred():
            for name, child in reversed(list(self.children.items())):
                _stop_child(name, child)
            self.children.clear()

    def __enter__(self) -> Deployment:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def make_private(root: Path) -> None:
    """Directories under ``root`` 0700 and files 0600 (state left by an older version
    or another umask); symbolic links are left alone."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = 0o700 if path.is_dir() else 0o600
        if path.stat().st_mode & 0o777 & ~mode:
            path.chmod(mode)


def _stop_child(name: str, child: subprocess.Popen, timeout: float = 20.0) -> None:
    """Stop a child process; a Celery process gets a warm shutdown.

    SIGTERM goes to the Celery main process only: it stops taking tasks, lets the
    running one finish and stops its pool. (SIGTERM to the whole process group would
    also kill the pool's children mid-task.) Whatever is left after ``timeout`` is
    killed with the group.
    """
    if name not in JOB_ROLES:
        processes.stop(child)
        return
    if child.poll() is None:
        child.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout)
    processes.stop(child, timeout=1.0)  # stragglers of the group, if any


def _wait_for_log(
    log: Path, offset: int, marker: str, process: subprocess.Popen, timeout: float
) -> None:
    """Wait until ``marker`` appears in ``log`` after ``offset`` (or the process dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode("utf-8", "replace")
        if marker in text:
            return
        if process.poll() is not None:
            raise RuntimeError(
                f"{' '.join(process.args[2:5])} exited with {process.returncode}:\n{text[-3000:]}"
            )
        time.sleep(0.1)
    raise TimeoutError(f"{log.name}: no {marker.strip()!r} within {timeout} s")
