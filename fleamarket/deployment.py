"""The local deployment: dev PKI, databases, principals and the running services.

``python -m fleamarket up`` and ``demo`` use it, and so do the end-to-end tests,
so that what is tested is what runs.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from fleamarket import processes
from fleamarket.settings import var_dir
from s2s_auth.pki import CertificateAuthority

TRUST_DOMAIN = "fleamarket.local"
CERT_NAMES = ("users", "ads", "worker", "proxy")
# Least privilege: each caller gets exactly the scopes the deployment needs.
PRINCIPALS: dict[str, tuple[str, ...]] = {
    "ads": ("users:read",),
    "worker": ("users:read", "users:notify"),
    "proxy": (),  # known, but granted nothing: it only forwards certificates
}
DEFAULT_PORTS = {
    "users": int(os.environ.get("FLEAMARKET_USERS_PORT", "8001")),
    "ads": int(os.environ.get("FLEAMARKET_ADS_PORT", "8002")),
}
RENEW_BEFORE = dt.timedelta(hours=2)


def ensure_dev_pki(pki_dir: Path, *, trust_domain: str = TRUST_DOMAIN) -> CertificateAuthority:
    """The dev CA and a current certificate for every service; idempotent.

    A certificate that is missing or expires within two hours is (re)issued; the
    CRL is rewritten, so it is never stale.
    """
    ca = CertificateAuthority(pki_dir, trust_domain)
    if not ca.initialized:
        ca.init()
    now = dt.datetime.now(dt.UTC)
    for name in CERT_NAMES:
        cert_path, key_path = ca.paths(name)
        if not (cert_path.exists() and key_path.exists()):
            ca.issue(name)
        elif ca.load_certificate(name).not_valid_after_utc - now < RENEW_BEFORE:
            ca.renew(name)
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
    """Both services under gunicorn with the s2s_auth TLS worker, on loopback."""

    var: Path = field(default_factory=var_dir)
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    database_urls: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    workers: int = 1
    children: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def pki_dir(self) -> Path:
        return self.var / "pki"

    def url(self, service: str) -> str:
        return f"https://127.0.0.1:{self.ports[service]}"

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
            }
        )
        if service in self.database_urls:
            env[f"{service.upper()}_DATABASE_URL"] = self.database_urls[service]
        if service == "users":
            env["S2S_ISSUER"] = self.url("users")
        if service == "ads":
            env["USERS_SERVICE_URL"] = self.url("users")
            env["S2S_ISSUER"] = self.url("users")
        env.update(self.extra_env.get(service, {}))
        return env

    def manage(self, service: str, *args: str) -> subprocess.CompletedProcess:
        return processes.manage(service, *args, env=self.env(service))

    def prepare(self, *, seed: bool = True) -> None:
        """PKI, migrations, demo data and the principals UserService knows."""
        ensure_dev_pki(self.pki_dir)
        (self.var / "logs").mkdir(parents=True, exist_ok=True)
        for service in self.ports:
            self.manage(service, "migrate", "--noinput", "-v0")
            if seed:
                self.manage(service, "seed_demo")
        for name, scopes in PRINCIPALS.items():
            args = [arg for scope in scopes for arg in ("--scope", scope)]
            self.manage("users", "s2s_service", "add", name, *args)

    def start(self) -> None:
        for service, port in self.ports.items():
            processes.ensure_port_free(port, f"the {service} service")
        try:
            for service, port in self.ports.items():
                self.children[service] = processes.start_gunicorn(
                    service,
                    port,
                    env=self.env(service),
                    log=self.log_path(service),
                    workers=self.workers,
                )
            for service, port in self.ports.items():
                processes.wait_for_port(port, self.children[service])
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for child in reversed(list(self.children.values())):
            processes.stop(child)
        self.children.clear()

    def __enter__(self) -> Deployment:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
