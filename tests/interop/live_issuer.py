"""A live identity service for the interop tests: the deployment's UserService (which
hosts the issuer) under gunicorn with TLS, as ``python -m fleamarket up`` starts it,
with clients registered the way an operator registers them (the management command)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from tests.live import live_deployment

SCOPE = "users:read"


@dataclass
class LiveIssuer:
    base: str
    pki: Path
    #: client name → client secret (client_secret_basic / _post)
    secrets: dict[str, str] = field(default_factory=dict)
    #: client name → PEM private key whose public key was registered (private_key_jwt)
    private_keys: dict[str, bytes] = field(default_factory=dict)

    @property
    def ca(self) -> str:
        return str(self.pki / "ca.pem")

    @property
    def token_endpoint(self) -> str:
        return f"{self.base}/oauth/token"

    @property
    def metadata_url(self) -> str:
        return f"{self.base}/.well-known/oauth-authorization-server"

    def certificate(self, name: str) -> tuple[str, str]:
        """The dev PKI's certificate and key of service ``name`` (for mTLS)."""
        return str(self.pki / f"{name}.pem"), str(self.pki / f"{name}.key")


def _pem(key) -> tuple[bytes, bytes]:
    private = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return private, public


@contextlib.contextmanager
def live_issuer(workdir: Path) -> Iterator[LiveIssuer]:
    with live_deployment(workdir, ("users",)) as deployment:
        issuer = LiveIssuer(base=deployment.url("users"), pki=deployment.pki_dir)
        for name in ("authlib", "authlib-pkjwt", "authlib-ed"):
            done = deployment.manage("users", "s2s_service", "add", name, "--scope", SCOPE)
            assert done.returncode == 0, done.stderr
            issuer.secrets[name] = re.search(r"^client_secret: (\S+)$", done.stdout, re.M)[1]
        for name, key in (
            ("authlib-pkjwt", ec.generate_private_key(ec.SECP256R1())),
            ("authlib-ed", ed25519.Ed25519PrivateKey.generate()),
        ):
            private, public = _pem(key)
            path = workdir / f"{name}.pub.pem"
            path.write_bytes(public)
            done = deployment.manage("users", "s2s_service", "register-key", name, str(path))
            assert done.returncode == 0, done.stderr
            issuer.private_keys[name] = private
        yield issuer
