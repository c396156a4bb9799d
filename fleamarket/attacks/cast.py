"""The cast of an attack run: certificates, principals and API keys, made before any attack.

- ``ads``: the victim (``users:read``); ``worker`` (``users:read users:notify``);
- ``intruder``: registered, certificate registered, no scope;
- ``attack-signer`` (``users:read``): certificate registered for RFC 9421 signatures
  without mTLS;
- ``attack-revoked`` (``users:read``): revoked once its credentials are in hand;
- ``attack-expired``: a certificate of our CA that has expired;
- a rogue CA's certificate for ``ads`` (same trust domain, nobody trusts the CA).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from fleamarket.deployment import Deployment
from s2s_auth.core.ca import CertificateAuthority

from .forge import TRUST_DOMAIN

#: Certificates of our CA issued for the run (``ads`` and ``worker`` exist already).
ISSUED = ("intruder", "attack-signer", "attack-revoked")

#: Principals, registered certificates and API keys that have no CLI of their own (a
#: registered certificate, an expired key), made in one ``manage.py shell``.
DATABASE_SCRIPT = """
import datetime as dt, json
from django.utils import timezone
from s2s_auth.credentials.apikeys import create_key, revoke_key
from s2s_auth.credentials.certificates import register_certificate
from s2s_auth.credentials.principals import ensure_principal
pki = {pki!r}
def pem(name):
    return open(f"{{pki}}/{{name}}.pem").read()
intruder, _ = ensure_principal("intruder")
register_certificate(intruder, pem("intruder"))
signer, _ = ensure_principal("attack-signer", ["users:read"])
register_certificate(signer, pem("attack-signer"))
revoked, _ = ensure_principal("attack-revoked", ["users:read"])
register_certificate(revoked, pem("attack-revoked"))
ensure_principal("attack-expired", ["users:read"])
ads, _ = ensure_principal("ads", ["users:read"])
keys = {{}}
_, keys["intruder"] = create_key(intruder, expires_days=1, description="attack run")
key, keys["revoked"] = create_key(ads, expires_days=1, description="attack run, revoked")
revoke_key(key.key_id)
key, keys["expired"] = create_key(ads, expires_days=1, description="attack run, expired")
key.expires_at = timezone.now() - dt.timedelta(minutes=1)
key.save(update_fields=["expires_at"])
print("ATTACK-SETUP " + json.dumps({{"api_keys": keys}}))
"""


def issue_certificates(pki: Path, scratch: Path) -> tuple[CertificateAuthority, Path]:
    """Our CA's certificates for the cast, and a rogue CA's for ``ads``.

    Returns our CA (to revoke with later) and the rogue CA's directory."""
    ca = CertificateAuthority(pki, TRUST_DOMAIN)
    for name in ISSUED:
        ca.issue(name, dns_names=("localhost",))
    now = dt.datetime.now(dt.UTC)
    ca.issue(
        "attack-expired",
        not_before=now - dt.timedelta(hours=2),
        not_after=now - dt.timedelta(hours=1),
    )
    rogue = CertificateAuthority(scratch / "rogue", TRUST_DOMAIN)
    rogue.init()
    rogue.issue("ads")
    return ca, rogue.directory


def create_principals(deployment: Deployment) -> dict[str, str]:
    """The cast's principals and registered certificates; returns the API keys by role
    (``intruder``, ``revoked``, ``expired`` and ``ads``' own)."""
    script = DATABASE_SCRIPT.format(pki=str(deployment.pki_dir))
    result = deployment.manage("users", "shell", "-c", script)
    line = next(x for x in result.stdout.splitlines() if x.startswith("ATTACK-SETUP "))
    api_keys = json.loads(line.removeprefix("ATTACK-SETUP "))["api_keys"]
    result = deployment.manage("users", "s2s_service", "add-key", "ads", "--expires", "1")
    api_keys["ads"] = next(
        line.split(": ", 1)[1]
        for line in result.stdout.splitlines()
        if line.startswith("api key for ads:")
    )
    return api_keys


__all__ = ["DATABASE_SCRIPT", "create_principals", "issue_certificates"]
