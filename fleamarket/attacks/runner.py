"""Run every attack of the catalogue against a live UserService, per mechanism profile.

The :class:`Lab` starts the deployment's UserService (gunicorn, TLS with client
certificates, the default ``S2S_AUTH["MECHANISMS"]``) and, for the API-key profile, a
second UserService process on the same database started with
``S2S_MECHANISMS=service_jwt,http_signature,access_token,api_key,mtls``. It prepares the
cast: the victim ``ads`` (``users:read``), ``worker`` (``users:read users:notify``), an
``intruder`` (registered, no scope), ``attack-signer`` (``users:read``, certificate
registered for RFC 9421 signatures without mTLS), ``attack-revoked`` (revoked once its
credentials are in hand), ``attack-expired`` (a certificate of our CA that has expired),
and a rogue CA's certificate for ``ads``.

Each profile class has one method per applicable attack, returning the probes it made
(one request each); a cell is *accepted* when any of its probes got through.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import http_sf
import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.verification import PolicyBuilder, Store
from jwt.algorithms import ECAlgorithm

from fleamarket.deployment import DEFAULT_PORTS, Deployment
from fleamarket.processes import free_port
from s2s_auth.client.token_manager import TokenEndpointError, TokenManager
from s2s_auth.core.ca import CertificateAuthority

from . import forge
from .catalogue import ATTACKS, PROFILES, Profile
from .forge import Identity, spiffe

PREVIEWS = "/api/v1/users/previews?ids=1,2"
PREVIEWS_TAMPERED = "/api/v1/users/previews?ids=1,2,3"
PING = "/api/v1/ping"
ONE_MB = 1024 * 1024
API_KEY_MECHANISMS = "service_jwt,http_signature,access_token,api_key,mtls"
TIMEOUT = 10


class NotApplicable(Exception):
    """The attack does not apply to this mechanism (the message says why)."""


@dataclass
class Probe:
    """One request of an attack and what UserService (or the TLS layer) answered."""

    label: str
    accepted: bool
    status: int | str  # HTTP status, or "tls"/"closed"/"proof"/"token endpoint"
    reason: str
    detail: str = ""


@dataclass
class Cell:
    profile: str
    attack: str
    outcome: str  # "refused" | "accepted" | "n/a" | "error"
    expected: str  # "refuse" | "accept" | "-"
    probes: list[Probe] = field(default_factory=list)
    note: str = ""
    seconds: float = 0.0

    @property
    def violation(self) -> bool:
        """Accepted where it must be refused, or the attack could not be run."""
        return self.outcome == "error" or (self.outcome == "accepted" and self.expected != "accept")

    def as_dict(self) -> dict:
        data = asdict(self)
        data["violation"] = self.violation
        return data


# ------------------------------------------------------------------------ the lab


def _reason(response: requests.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        # Not from the application: gunicorn's own answer (e.g. 431 for a huge header).
        phrase = "_".join((response.reason or "").lower().split())
        text = response.text.strip().splitlines()
        return phrase, (text[0][:120] if text else "")
    if isinstance(body, dict):
        if "error" in body:
            return str(body["error"]), str(body.get("detail") or body.get("error_description", ""))
        return "", json.dumps(body)[:120]
    return "", ""


def _accepted(status: int) -> bool:
    # 405 is answered only after authentication and permissions passed (DRF dispatch).
    return status < 400 or status == 405


class Lab:
    """The running UserService, the cast of identities and helpers to call it."""

    def __init__(self, deployment: Deployment, scratch: Path, out=print):
        self.deployment = deployment
        self.scratch = scratch
        self.out = out
        self.keyserver: Deployment | None = None
        self.pki = deployment.pki_dir
        self.ca_file = str(self.pki / "ca.pem")

    # -- setup -----------------------------------------------------------------------
    def identity(self, name: str, directory: Path | None = None) -> Identity:
        base = directory or self.pki
        return Identity(name, base / f"{name}.pem", base / f"{name}.key")

    def setup(self) -> None:
        ca = CertificateAuthority(self.pki, forge.TRUST_DOMAIN)
        self.ca = ca
        for name in ("intruder", "attack-signer", "attack-revoked"):
            ca.issue(name, dns_names=("localhost",))
        now = dt.datetime.now(dt.UTC)
        ca.issue(
            "attack-expired",
            not_before=now - dt.timedelta(hours=2),
            not_after=now - dt.timedelta(hours=1),
        )
        rogue = CertificateAuthority(self.scratch / "rogue", forge.TRUST_DOMAIN)
        rogue.init()
        rogue.issue("ads")
        self.ads = self.identity("ads")
        self.worker = self.identity("worker")
        self.intruder = self.identity("intruder")
        self.signer = self.identity("attack-signer")
        self.revoked = self.identity("attack-revoked")
        self.expired = self.identity("attack-expired")
        self.rogue_ads = self.identity("ads", rogue.directory)
        # A certificate of ads' with the intruder's key: what "stealing" a certificate gives.
        self.ads_cert_intruder_key = Identity("ads", self.ads.cert_path, self.intruder.key_path)

        state = self._setup_database()
        self.api_keys = state["api_keys"]
        result = self.deployment.manage("users", "s2s_service", "add-key", "ads", "--expires", "1")
        self.api_keys["ads"] = next(
            line.split(": ", 1)[1]
            for line in result.stdout.splitlines()
            if line.startswith("api key for ads:")
        )

        # UserService with API keys enabled, on the same database.
        self.keyserver = Deployment(
            var=self.deployment.var,
            ports={"users": free_port()},
            database_urls=dict(self.deployment.database_urls),
            extra_env={"users": {"S2S_MECHANISMS": API_KEY_MECHANISMS}},
        )
        self.keyserver.start()

        jwks = self._get_json("/.well-known/jwks.json")
        first = jwks["keys"][0]
        self.issuer_kid = first["kid"]
        self.issuer_public_pem = forge.public_pem(ECAlgorithm.from_jwk(json.dumps(first)))

        self.tokens = {
            "ads_plain": self.token("ads", "private_key_jwt", "users:read"),
            "ads_bound": self.token("ads", "tls_client_auth", "users:read"),
            "worker_notify_plain": self.token("worker", "private_key_jwt", "users:notify"),
            "worker_notify_bound": self.token("worker", "tls_client_auth", "users:notify"),
            "revoked_bound": self.token("attack-revoked", "tls_client_auth", "users:read"),
        }
        # Credentials of attack-revoked work now ...
        before = self.call(cert=self.revoked)
        if not before.accepted:
            raise RuntimeError(f"attack-revoked should work before revocation: {before}")
        # ... and are revoked from here on (UserService re-reads crl.pem, no restart).
        ca.revoke("attack-revoked")

    def _get_json(self, path: str) -> dict:
        """GET a public document of UserService, saying clearly if the service died."""
        for attempt in range(3):
            try:
                with self.session() as session:
                    return session.get(self.url(path), timeout=TIMEOUT).json()
            except requests.ConnectionError:
                child = self.deployment.children.get("users")
                if attempt == 2 or (child is not None and child.poll() is not None):
                    log = self.deployment.log_path("users")
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    raise RuntimeError(
                        f"UserService does not answer on {self.url(path)} "
                        f"(exit code {child.poll() if child else None}); log tail:\n{tail}"
                    ) from None
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def _setup_database(self) -> dict:
        """Principals, registered certificates and API keys that have no CLI of their own
        (a registered certificate, an expired key), made in one ``manage.py shell``."""
        script = f"""
import datetime as dt, json
from django.utils import timezone
from s2s_auth.credentials.apikeys import create_key, revoke_key
from s2s_auth.credentials.certificates import register_certificate
from s2s_auth.credentials.principals import ensure_principal
pki = {str(self.pki)!r}
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
        result = self.deployment.manage("users", "shell", "-c", script)
        line = next(x for x in result.stdout.splitlines() if x.startswith("ATTACK-SETUP "))
        return json.loads(line.removeprefix("ATTACK-SETUP "))

    def token(self, name: str, method: str, scope: str) -> str:
        identity = self.identity(name)
        manager = TokenManager(
            self.url("/oauth/token"),
            client_id=name,
            cert=(identity.cert_path, identity.key_path),
            auth_method=method,
            scope=scope,
            ca_bundle=self.ca_file,
            max_attempts=1,
        )
        try:
            return manager.token()
        finally:
            manager.close()

    def token_request(self, identity: Identity, client_id: str, method: str, scope: str) -> Probe:
        """Ask the token endpoint; a refusal is a refused probe."""
        manager = TokenManager(
            self.url("/oauth/token"),
            client_id=client_id,
            cert=identity.cert,
            auth_method=method,
            scope=scope,
            ca_bundle=self.ca_file,
            max_attempts=1,
        )
        label = f"token endpoint: {method} as {client_id} with {identity.name}'s certificate"
        try:
            manager.token()
        except TokenEndpointError as exc:
            if exc.status is None and "SSLError" in str(exc):
                return Probe(label, False, "tls", "handshake_refused", str(exc)[:160])
            return Probe(label, False, exc.status or "token endpoint", exc.error, str(exc)[:160])
        except requests.exceptions.SSLError as exc:
            return Probe(label, False, "tls", "handshake_refused", _short(exc))
        finally:
            manager.close()
        return Probe(label, True, 200, "token_issued")

    def stop(self) -> None:
        if self.keyserver is not None:
            self.keyserver.stop()

    # -- calling ---------------------------------------------------------------------
    def url(self, path: str, *, keyserver: bool = False) -> str:
        target = self.keyserver if keyserver else self.deployment
        return f"{target.url('users')}{path}"

    def session(self, cert: Identity | None = None) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca_file
        if cert is not None:
            session.cert = cert.cert
        return session

    def call(
        self,
        path: str = PREVIEWS,
        *,
        label: str = "",
        cert: Identity | None = None,
        headers: dict[str, str] | None = None,
        method: str = "GET",
        data: bytes | None = None,
        keyserver: bool = False,
    ) -> Probe:
        label = label or f"{method} {path}" + (f" with {cert.name}'s certificate" if cert else "")
        with self.session(cert) as session:
            try:
                response = session.request(
                    method,
                    self.url(path, keyserver=keyserver),
                    headers=headers,
                    data=data,
                    timeout=TIMEOUT,
                    allow_redirects=False,
                )
            except requests.exceptions.SSLError as exc:
                return Probe(label, False, "tls", "handshake_refused", _short(exc))
            except requests.exceptions.ConnectionError as exc:
                return Probe(label, False, "closed", "connection_closed", _short(exc))
        return self.probe(label, response)

    def send(
        self,
        prepared: requests.PreparedRequest,
        *,
        label: str,
        cert: Identity | None = None,
        **changes,
    ) -> Probe:
        with self.session(cert) as session:
            try:
                response = forge.resend(session, prepared, **changes)
            except requests.exceptions.SSLError as exc:
                return Probe(label, False, "tls", "handshake_refused", _short(exc))
            except requests.exceptions.ConnectionError as exc:
                return Probe(label, False, "closed", "connection_closed", _short(exc))
        return self.probe(label, response)

    @staticmethod
    def probe(label: str, response: requests.Response) -> Probe:
        reason, detail = _reason(response)
        if _accepted(response.status_code):
            reason = reason or "served"
        return Probe(label, _accepted(response.status_code), response.status_code, reason, detail)

    # -- credentials -------------------------------------------------------------------
    def service_jwt(self, signer: Identity, *, x5c: Identity | None = None, **claims) -> str:
        caller = claims.pop("caller", signer.name)
        return forge.service_jwt(
            signer.private_key,
            forge.service_claims(caller, **claims),
            x5c=x5c.x5c if x5c else None,
        )

    def access_claims(self, **overrides) -> dict:
        now = int(time.time())
        claims = {
            "iss": self.deployment.url("users"),
            "sub": spiffe("ads"),
            "client_id": "ads",
            "aud": spiffe("users"),
            "scope": "users:read",
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_urlsafe(16),
        }
        claims.update(overrides)
        return claims

    def signed(self, signer: Identity, *, key=None, method="GET", path=PREVIEWS, body=None):
        with self.session() as session:
            return forge.signed_request(
                session,
                method,
                self.url(path),
                key_id=signer.fingerprint,
                private_key=key or signer.private_key,
                body=body,
            )

    # -- the audit proof ---------------------------------------------------------------
    def audit_proof(self, since: dt.datetime, credential_part: str, label: str) -> Probe:
        """Export the accepted audit record holding ``credential_part`` and verify it
        with nothing but the CA certificate (ca.pem)."""
        result = self.deployment.manage(
            "users", "s2s_audit", "export", "--since", since.isoformat()
        )
        records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        matches = [
            r
            for r in records
            if r["outcome"] == "accepted" and credential_part and credential_part in r["credential"]
        ]
        if not matches:
            return Probe(label, True, "proof", "no_record", "no accepted record holds it")
        record = matches[-1]
        try:
            detail = verify_exported_record(record, Path(self.ca_file).read_bytes())
        except Exception as exc:  # any failure means: no proof
            return Probe(label, True, "proof", "proof_failed", f"{type(exc).__name__}: {exc}")
        return Probe(label, False, "proof", "denial_refuted", f"record {record['id']}: {detail}")


def _short(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("SSLError(", "[SSL", "Connection aborted", "RemoteDisconnected"):
        if marker in text:
            text = text[text.index(marker) :]
            break
    return text[:160]


def verify_exported_record(record: dict, ca_pem: bytes) -> str:
    """What a third party does with an ``s2s_audit export`` line and the CA certificate:
    the certificate path at the record's time, the signature over the credential, the
    principal, and the record's hash. Raises on any mismatch; returns a summary."""
    anchors = x509.load_pem_x509_certificates(ca_pem)
    chain = x509.load_pem_x509_certificates(record["certificate"].encode())
    leaf, intermediates = chain[0], chain[1:]
    when = dt.datetime.fromisoformat(record["time"])
    verifier = PolicyBuilder().store(Store(anchors)).time(when).build_client_verifier()
    verifier.verify(leaf, intermediates)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    if record["principal"] not in san.get_values_for_type(x509.UniformResourceIdentifier):
        raise ValueError("the certificate does not name the recorded principal")
    if record["signature_base"]:
        base = record["signature_base"]
        # The Signature field (older records: "Signature-Input: ...\nSignature: ...").
        field_value = next(
            (
                line.removeprefix("Signature: ")
                for line in record["credential"].splitlines()
                if line.startswith("Signature: ")
            ),
            record["credential"],
        )
        members = http_sf.parse(field_value.encode(), tltype="dictionary")
        raw = next(iter(members.values()))[0]
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        leaf.public_key().verify(der, base.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        what = "RFC 9421 signature over the stored signature base"
    else:
        claims = jwt.decode(
            record["credential"],
            leaf.public_key(),
            algorithms=["ES256"],
            options={"verify_exp": False, "verify_aud": False, "verify_iat": False},
        )
        if claims["iss"] != record["principal"] or claims["sub"] != record["principal"]:
            raise ValueError("iss/sub are not the recorded principal")
        what = f"JWT signature (jti {claims['jti']})"
    digest = hashlib.sha256(record["hash_input"].encode("utf-8")).hexdigest()
    if digest != record["hash"]:
        raise ValueError("hash_input does not hash to the record's hash")
    return (
        f"{what} verified with the certificate of {record['principal']}, whose path to "
        "ca.pem was valid at the record's time; the record's hash checks"
    )


# -------------------------------------------------------------------- the profiles


class Mechanism:
    """One profile: a method per applicable attack, each returning its probes."""

    id = ""

    def __init__(self, lab: Lab):
        self.lab = lab

    def run(self, attack_id: str) -> list[Probe]:
        method: Callable[[], Probe | list[Probe]] | None = getattr(self, attack_id, None)
        if attack_id in getattr(self, "not_applicable", {}):
            method = None
        if method is None:
            raise NotApplicable(getattr(self, "not_applicable", {}).get(attack_id, ""))
        result = method()
        return result if isinstance(result, list) else [result]


class Network(Mechanism):
    """The unauthenticated baseline: /api/v1/ping takes whoever connects."""

    id = "network"

    def no_credentials(self):
        return self.lab.call(PING)

    def impersonate_claim(self):
        return self.lab.call(
            PING,
            label="GET /api/v1/ping saying X-Service-Name: ads",
            headers={"X-Service-Name": "ads", "X-Forwarded-User": spiffe("ads")},
        )

    def replay(self):
        self.lab.call(PING)
        return self.lab.call(PING, label="the same request again")

    def tampered_request(self):
        return self.lab.call(PING + "?tampered=1", label="GET /api/v1/ping?tampered=1")

    def unscoped(self):
        return self.lab.call(PING, cert=self.lab.intruder)

    def forged_end_user(self):
        return self.lab.call(PING, label="X-End-User: 1", headers={"X-End-User": "1"})

    def repudiation(self):
        return Probe("audit", True, "-", "no_record_of_caller", "nothing identifies the caller")


class APIKey(Mechanism):
    id = "api_key"
    not_applicable = {
        "impersonate_claim": "a key carries no identity claim but its id (see wrong key)",
        "rogue_ca": "no certificate involved",
    }

    def call(self, key: str, label: str, path: str = PREVIEWS) -> Probe:
        return self.lab.call(
            path, label=label, headers={"Authorization": f"ApiKey {key}"}, keyserver=True
        )

    def no_credentials(self):
        return self.lab.call(keyserver=True)

    def impersonate_key(self):
        key_id = self.lab.api_keys["ads"].split("_")[1]
        forged = f"s2s_{key_id}_{secrets.token_urlsafe(32)}"
        return self.call(forged, "ads' key id with a guessed secret")

    def expired_cert(self):
        return self.call(self.lab.api_keys["expired"], "an expired API key of ads")

    def revoked_cert(self):
        return self.call(self.lab.api_keys["revoked"], "a revoked API key of ads")

    def stolen_replay(self):
        return self.call(self.lab.api_keys["ads"], "ads' key, from another machine")

    def intercepted_unused(self):
        return self.call(self.lab.api_keys["ads"], "ads' key, taken before use")

    def replay(self):
        self.call(self.lab.api_keys["ads"], "first")
        return self.call(self.lab.api_keys["ads"], "the same request again")

    def tampered_request(self):
        return self.call(self.lab.api_keys["ads"], "another query", PREVIEWS_TAMPERED)

    def kid_injection(self):
        return [
            self.call("s2s_../../../../etc/passwd_" + "A" * 43, "key id ../../../../etc/passwd"),
            self.call("s2s_' OR '1'='1' --_" + "A" * 43, "key id ' OR '1'='1' --"),
        ]

    def oversized_token(self):
        return self.call("s2s_" + "A" * ONE_MB, "1 MB API key")

    def unscoped(self):
        return self.call(self.lab.api_keys["intruder"], "the intruder's own key (no scope)")

    def repudiation(self):
        return Probe("audit", True, "-", "no_signed_credential", "the record keeps the key id only")


class MTLS(Mechanism):
    id = "mtls"
    not_applicable = {
        "stolen_replay": "nothing reusable leaves the TLS session; the key never travels",
        "intercepted_unused": "nothing reusable leaves the TLS session",
        "replay": "TLS records cannot be replayed",
        "tampered_request": "TLS protects the request's integrity",
    }

    def no_credentials(self):
        return self.lab.call(label="no client certificate")

    def impersonate_key(self):
        return self.lab.call(
            label="ads' certificate with the intruder's key", cert=self.lab.ads_cert_intruder_key
        )

    def impersonate_claim(self):
        return self.lab.call(
            label="intruder's certificate, headers saying it is ads",
            cert=self.lab.intruder,
            headers={"X-Service-Name": "ads", "X-Forwarded-User": spiffe("ads")},
        )

    def rogue_ca(self):
        return self.lab.call(label="rogue CA's certificate for ads", cert=self.lab.rogue_ads)

    def expired_cert(self):
        return self.lab.call(label="expired certificate", cert=self.lab.expired)

    def revoked_cert(self):
        return self.lab.call(label="revoked certificate", cert=self.lab.revoked)

    def proxy_header(self):
        return self.lab.call(
            label="ads' certificate in proxy headers", headers=proxy_headers(self.lab)
        )

    def unscoped(self):
        return self.lab.call(label="intruder's certificate (no scope)", cert=self.lab.intruder)

    def repudiation(self):
        return Probe(
            "audit", True, "-", "no_signed_credential", "the record keeps the fingerprint only"
        )


def proxy_headers(lab: Lab) -> dict[str, str]:
    from urllib.parse import quote

    pem = quote(lab.ads.chain_pem, safe="")
    return {"X-SSL-Client-Cert": pem, "X-Forwarded-Client-Cert": f'Cert="{pem}"'}


#: ``cert=`` default of the token mechanisms' ``send``: the profile's own channel.
CHANNEL = Identity("channel", Path("/nonexistent"), Path("/nonexistent"))


class ServiceJWT(Mechanism):
    """Self-signed JWTs with x5c, no client certificate."""

    id = "service_jwt"
    keyword = "ServiceJWT"
    not_applicable = {
        "proxy_header": "the certificate comes from x5c here; see mTLS and the default",
    }
    #: Where forged tokens are sent from: nowhere special (no client certificate).
    channel: Identity | None = None
    #: Whether ads' own tokens carry x5c.
    with_x5c = True

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"{self.keyword} {token}"}

    def send(self, token: str, label: str, *, cert=CHANNEL, path=PREVIEWS, **kw) -> Probe:
        """Send ``token``; ``cert`` None: without a client certificate; by default over
        the profile's channel."""
        cert = self.channel if cert is CHANNEL else cert
        return self.lab.call(path, label=label, headers=self.auth(token), cert=cert, **kw)

    def victim_token(self) -> str:
        return self.lab.service_jwt(self.lab.ads, x5c=self.lab.ads if self.with_x5c else None)

    def victim_call(self) -> str:
        """ads makes a normal call; returns the (now used) token."""
        token = self.victim_token()
        probe = self.lab.call(headers=self.auth(token), cert=self.victim_channel())
        if not probe.accepted:
            raise RuntimeError(f"the victim's own call was refused: {probe}")
        return token

    def victim_channel(self) -> Identity | None:
        return None

    def forged_header(self) -> dict:
        return {"typ": forge.SERVICE_JWT_TYPE, "x5c": self.lab.ads.x5c}

    # -- attacks ---------------------------------------------------------------------
    def no_credentials(self):
        return self.lab.call(label="no Authorization, no certificate")

    def impersonate_key(self):
        token = self.lab.service_jwt(self.lab.intruder, x5c=self.lab.ads, caller="ads")
        return self.send(token, "claims ads, x5c = ads' chain, signed by the intruder")

    def impersonate_claim(self):
        token = self.lab.service_jwt(self.lab.intruder, x5c=self.lab.intruder, caller="ads")
        return self.send(token, "sub = ads, signed by the intruder with its own x5c")

    def rogue_ca(self):
        token = self.lab.service_jwt(self.lab.rogue_ads, x5c=self.lab.rogue_ads)
        return self.send(token, "x5c from a rogue CA for ads")

    def expired_cert(self):
        token = self.lab.service_jwt(self.lab.expired, x5c=self.lab.expired)
        return self.send(token, "x5c = an expired certificate")

    def revoked_cert(self):
        token = self.lab.service_jwt(self.lab.revoked, x5c=self.lab.revoked)
        return self.send(token, "x5c = a revoked certificate")

    def stolen_replay(self):
        token = self.victim_call()
        return self.send(
            token, "ads' used token, from a machine without its certificate", cert=None
        )

    def intercepted_unused(self):
        return self.send(self.victim_token(), "ads' unused token, from another machine", cert=None)

    def replay(self):
        token = self.victim_call()
        return self.send(token, "the same token again", cert=self.victim_channel())

    def tampered_request(self):
        token = self.victim_call()
        channel = self.victim_channel()
        return [
            self.send(token, "another path", cert=channel, path=PREVIEWS_TAMPERED),
            self.send(token, "another method (POST)", cert=channel, method="POST"),
            self.send(token, "a body added", cert=channel, data=b'{"ids": [3]}'),
        ]

    def tampered_claims(self):
        token = self.victim_token()
        channel = self.victim_channel()
        return [
            self.send(
                forge.tamper_payload(token, exp=int(time.time()) + 3000),
                "exp extended",
                cert=channel,
            ),
            self.send(forge.tamper_payload(token, aud=spiffe("ads")), "aud changed", cert=channel),
        ]

    def alg_none(self):
        claims = forge.service_claims("ads")
        return self.send(
            forge.alg_none_jwt(self.forged_header(), claims),
            "alg none, claims ads",
            cert=self.victim_channel(),
        )

    def hs256_public_key(self):
        token = forge.hmac_jwt(
            self.forged_header(), forge.service_claims("ads"), self.lab.ads.public_pem
        )
        return self.send(token, "HS256 keyed with ads' public key", cert=self.victim_channel())

    def ecdsa_zero(self):
        token = forge.zero_signature_jwt(self.forged_header(), forge.service_claims("ads"))
        return self.send(token, "ES256 with r = s = 0", cert=self.victim_channel())

    def kid_injection(self):
        header = self.forged_header()
        claims = forge.service_claims
        return [
            self.send(
                forge.hmac_jwt({**header, "kid": "../../../../../../dev/null"}, claims("ads"), b""),
                "kid ../../../../dev/null, HS256 with an empty key",
                cert=self.victim_channel(),
            ),
            self.send(
                forge.hmac_jwt({**header, "kid": "x' UNION SELECT 'k' --"}, claims("ads"), b"k"),
                "kid x' UNION SELECT 'k' --, HS256 keyed 'k'",
                cert=self.victim_channel(),
            ),
        ]

    def header_keys(self):
        attacker = forge.fresh_key()
        jwk = json.loads(ECAlgorithm.to_jwk(attacker.public_key()))
        base = {"typ": forge.SERVICE_JWT_TYPE, "x5c": self.lab.ads.x5c}
        probes = []
        for name, value in (
            ("jku", "https://attacker.example/jwks.json"),
            ("x5u", "https://attacker.example/cert.pem"),
            ("jwk", jwk),
        ):
            token = jwt.encode(
                forge.service_claims("ads"),
                attacker,
                algorithm="ES256",
                headers={**base, name: value},
            )
            probes.append(self.send(token, f"{name} → attacker's key", cert=self.victim_channel()))
        return probes

    def oversized_token(self):
        return self.send("a" * ONE_MB, "1 MB token", cert=self.victim_channel())

    def nested_json(self):
        """Nested JSON in the header (parsed before any signature check) and in a payload
        the intruder signed validly (parsed after it)."""
        signer = self.lab.intruder
        via_mtls = self.channel is not None
        header = {"typ": forge.SERVICE_JWT_TYPE, **({} if via_mtls else {"x5c": signer.x5c})}
        signed = jwt.api_jws.encode(
            forge.nested_payload(), signer.private_key, algorithm="ES256", headers=header
        )
        cert = signer if via_mtls else None
        return [
            self.send(
                forge.nested_header_jwt(header),
                f"header nested {forge.NESTING} deep",
                cert=cert,
            ),
            self.send(signed, f"validly signed payload nested {forge.NESTING} deep", cert=cert),
        ]

    def unscoped(self):
        token = self.lab.service_jwt(self.lab.intruder, x5c=self.lab.intruder)
        return self.send(token, "the intruder's own valid token (no scope)")

    def forged_end_user(self):
        lab = self.lab
        user_claims = lab.access_claims(
            sub="1", client_id="users", aud="fleamarket", scope="ads:read ads:write"
        )
        forged_sig = forge.fresh_key()
        forgeries = {
            "user token signed by the attacker (issuer's kid)": jwt.encode(
                user_claims,
                forged_sig,
                algorithm="ES256",
                headers={"typ": forge.ACCESS_TOKEN_TYPE, "kid": lab.issuer_kid},
            ),
            "user token with alg none": forge.alg_none_jwt(
                {"typ": forge.ACCESS_TOKEN_TYPE, "kid": lab.issuer_kid}, user_claims
            ),
        }
        probes = []
        for label, user_token in forgeries.items():
            token = forge.service_jwt(
                lab.ads.private_key,
                forge.service_claims("ads", end_user_token=user_token),
                x5c=lab.ads.x5c if self.with_x5c else None,
            )
            probes.append(self.send(token, label, cert=self.victim_channel()))
        return probes

    def repudiation(self):
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
        token = self.victim_call()
        return self.lab.audit_proof(since, token, "ads' call, exported and verified with ca.pem")


class Default(ServiceJWT):
    """What ads does: a service JWT without x5c over mTLS with its certificate.

    Forged tokens go over ads' own TLS connection (a sidecar or proxy that holds the
    connection but not the key): a bad token must be refused, never fall back to mTLS.
    """

    id = "default"
    with_x5c = False
    not_applicable: dict = {}

    @property
    def channel(self):  # type: ignore[override]
        return self.lab.ads

    def victim_channel(self):
        return self.lab.ads

    def forged_header(self) -> dict:
        return {"typ": forge.SERVICE_JWT_TYPE}

    def impersonate_key(self):
        return [
            self.lab.call(
                label="ads' certificate with the intruder's key (TLS)",
                cert=self.lab.ads_cert_intruder_key,
            ),
            self.send(
                self.lab.service_jwt(self.lab.intruder, x5c=self.lab.ads, caller="ads"),
                "over the intruder's mTLS: claims ads, x5c = ads, signed by the intruder",
                cert=self.lab.intruder,
            ),
            self.send(
                self.lab.service_jwt(self.lab.intruder, caller="ads"),
                "over ads' connection: claims ads, signed by the intruder",
            ),
        ]

    def impersonate_claim(self):
        token = self.lab.service_jwt(self.lab.intruder, caller="ads")
        return self.send(token, "over the intruder's mTLS: sub = ads", cert=self.lab.intruder)

    def rogue_ca(self):
        token = self.lab.service_jwt(self.lab.rogue_ads)
        return self.send(token, "rogue CA's certificate for ads", cert=self.lab.rogue_ads)

    def expired_cert(self):
        token = self.lab.service_jwt(self.lab.expired)
        return self.send(token, "expired certificate", cert=self.lab.expired)

    def revoked_cert(self):
        token = self.lab.service_jwt(self.lab.revoked)
        return self.send(token, "revoked certificate", cert=self.lab.revoked)

    def proxy_header(self):
        return self.lab.call(
            label="ads' unused token, ads' certificate in proxy headers, no client certificate",
            headers={**self.auth(self.victim_token()), **proxy_headers(self.lab)},
        )

    def unscoped(self):
        token = self.lab.service_jwt(self.lab.intruder)
        return self.send(
            token, "intruder's mTLS and its own token (no scope)", cert=self.lab.intruder
        )


class AccessToken(Mechanism):
    """Client-credentials tokens, not bound (private_key_jwt without a client certificate)."""

    id = "access_token"
    not_applicable = {
        "expired_cert": "no certificate in use (see the certificate-bound token)",
        "revoked_cert": "no certificate in use (see the certificate-bound token)",
        "proxy_header": "no certificate in use (see the certificate-bound token)",
        "forged_end_user": "a service token carries no end-user context",
    }
    channel: Identity | None = None
    victim = "ads_plain"

    def send(self, token: str, label: str, *, cert=None, path=PREVIEWS) -> Probe:
        return self.lab.call(
            path, label=label, headers={"Authorization": f"Bearer {token}"}, cert=cert
        )

    def forge_send(self, token: str, label: str) -> Probe:
        return self.send(token, label, cert=self.channel)

    def forged_claims(self, **overrides) -> dict:
        return self.lab.access_claims(**overrides)

    def header(self, **extra) -> dict:
        return {"typ": forge.ACCESS_TOKEN_TYPE, "kid": self.lab.issuer_kid, **extra}

    # -- attacks ---------------------------------------------------------------------
    def no_credentials(self):
        return self.lab.call(label="no token")

    def impersonate_key(self):
        token = jwt.encode(
            self.forged_claims(), forge.fresh_key(), algorithm="ES256", headers=self.header()
        )
        return self.forge_send(token, "token for ads signed by the attacker (issuer's kid)")

    def impersonate_claim(self):
        return self.lab.token_request(self.lab.intruder, "ads", "private_key_jwt", "users:read")

    def rogue_ca(self):
        token = jwt.encode(
            self.forged_claims(),
            forge.fresh_key(),
            algorithm="ES256",
            headers=self.header(kid="rogue-issuer-key"),
        )
        return self.forge_send(token, "token signed by a rogue issuer key")

    def stolen_replay(self):
        token = self.lab.tokens[self.victim]
        self.send(token, "victim's call", cert=self.victim_channel())
        return self.send(token, "ads' token, from a machine without its certificate")

    def intercepted_unused(self):
        return self.send(self.lab.tokens[self.victim], "ads' token, from another machine")

    def victim_channel(self):
        return None

    def replay(self):
        token = self.lab.tokens[self.victim]
        self.send(token, "first", cert=self.victim_channel())
        return self.send(token, "the same request again", cert=self.victim_channel())

    def tampered_request(self):
        return self.send(
            self.lab.tokens[self.victim], "ads' token on another query", path=PREVIEWS_TAMPERED
        )

    def tampered_claims(self):
        token = self.lab.tokens["worker_notify_plain"]
        return self.forge_send(
            forge.tamper_payload(token, scope="users:read users:notify"),
            "worker's users:notify token with scope users:read added",
        )

    def alg_none(self):
        return self.forge_send(forge.alg_none_jwt(self.header(), self.forged_claims()), "alg none")

    def hs256_public_key(self):
        token = forge.hmac_jwt(self.header(), self.forged_claims(), self.lab.issuer_public_pem)
        return self.forge_send(token, "HS256 keyed with the issuer's public key (JWKS)")

    def ecdsa_zero(self):
        return self.forge_send(
            forge.zero_signature_jwt(self.header(), self.forged_claims()), "ES256 r = s = 0"
        )

    def kid_injection(self):
        return [
            self.forge_send(
                forge.hmac_jwt(
                    self.header(kid="../../../../../../dev/null"), self.forged_claims(), b""
                ),
                "kid ../../../../dev/null, HS256 with an empty key",
            ),
            self.forge_send(
                forge.hmac_jwt(
                    self.header(kid="x' UNION SELECT 'k' --"), self.forged_claims(), b"k"
                ),
                "kid x' UNION SELECT 'k' --, HS256 keyed 'k'",
            ),
        ]

    def header_keys(self):
        attacker = forge.fresh_key()
        jwk = json.loads(ECAlgorithm.to_jwk(attacker.public_key()))
        probes = []
        for name, value in (
            ("jku", "https://attacker.example/jwks.json"),
            ("x5u", "https://attacker.example/cert.pem"),
            ("jwk", jwk),
        ):
            token = jwt.encode(
                self.forged_claims(),
                attacker,
                algorithm="ES256",
                headers=self.header(kid="attacker", **{name: value}),
            )
            probes.append(self.forge_send(token, f"{name} → attacker's key"))
        return probes

    def oversized_token(self):
        return self.forge_send("a" * ONE_MB, "1 MB token")

    def nested_json(self):
        token = jwt.api_jws.encode(
            forge.nested_payload(), forge.fresh_key(), algorithm="ES256", headers=self.header()
        )
        return [
            self.forge_send(
                forge.nested_header_jwt(self.header()), f"header nested {forge.NESTING} deep"
            ),
            self.forge_send(token, f"payload nested {forge.NESTING} deep (attacker-signed)"),
        ]

    def unscoped(self):
        return [
            self.send(
                self.lab.tokens["worker_notify_plain"],
                "worker's token for users:notify only",
                cert=None,
            ),
            self.lab.token_request(self.lab.intruder, "intruder", "private_key_jwt", "users:read"),
        ]

    def repudiation(self):
        return Probe(
            "audit", True, "-", "claims_only", "the record keeps the token's claims and hash"
        )


class BoundToken(AccessToken):
    """Tokens bound to ads' certificate (tls_client_auth), used over mTLS.

    Forged tokens are sent over the intruder's own mTLS connection and bound (``cnf``)
    to the intruder's certificate: were the signature not checked, they would pass.
    """

    id = "bound_token"
    not_applicable = {
        "replay": "only the certificate holder can present it (from anyone else: see theft)",
        "forged_end_user": "a service token carries no end-user context",
    }
    victim = "ads_bound"
    replay = None  # not applicable (see not_applicable)

    @property
    def channel(self):  # type: ignore[override]
        return self.lab.intruder

    def victim_channel(self):
        return self.lab.ads

    def forged_claims(self, **overrides) -> dict:
        return self.lab.access_claims(cnf={"x5t#S256": self.lab.intruder.x5t_s256}, **overrides)

    def no_credentials(self):
        return self.lab.call(label="no token, no certificate")

    def impersonate_key(self):
        return self.send(
            self.lab.tokens[self.victim],
            "ads' bound token over the intruder's mTLS",
            cert=self.lab.intruder,
        )

    def impersonate_claim(self):
        return self.lab.token_request(self.lab.intruder, "ads", "tls_client_auth", "users:read")

    def rogue_ca(self):
        return self.lab.token_request(self.lab.rogue_ads, "ads", "tls_client_auth", "users:read")

    def expired_cert(self):
        return self.lab.token_request(
            self.lab.expired, "attack-expired", "tls_client_auth", "users:read"
        )

    def revoked_cert(self):
        return self.send(
            self.lab.tokens["revoked_bound"],
            "token bound to a certificate revoked since, over that certificate",
            cert=self.lab.revoked,
        )

    def tampered_request(self):
        return self.send(
            self.lab.tokens[self.victim],
            "ads' token on another query, from the attacker's machine",
            path=PREVIEWS_TAMPERED,
        )

    def tampered_claims(self):
        token = self.lab.tokens[self.victim]
        return self.send(
            forge.tamper_payload(token, cnf={"x5t#S256": self.lab.intruder.x5t_s256}),
            "ads' token rebound (cnf) to the intruder's certificate",
            cert=self.lab.intruder,
        )

    def proxy_header(self):
        return self.lab.call(
            label="ads' token with ads' certificate in proxy headers",
            headers={
                "Authorization": f"Bearer {self.lab.tokens[self.victim]}",
                **proxy_headers(self.lab),
            },
        )

    def unscoped(self):
        return self.send(
            self.lab.tokens["worker_notify_bound"],
            "worker's bound token for users:notify only",
            cert=self.lab.worker,
        )


class HTTPSignature(Mechanism):
    """RFC 9421 signed requests by attack-signer, whose certificate is registered."""

    id = "http_signature"
    not_applicable = {
        "proxy_header": "the key comes from the registered certificate (see mTLS, default)",
        "forged_end_user": "signed requests carry no end-user context",
        "nested_json": "no JSON in an RFC 9421 signature",
        "tampered_claims": "no claims: see tampered body, method or path",
    }

    def victim_call(self) -> requests.PreparedRequest:
        prepared = self.lab.signed(self.lab.signer)
        probe = self.lab.send(prepared, label="the signer's own call")
        if not probe.accepted:
            raise RuntimeError(f"the signer's own call was refused: {probe}")
        return prepared

    def handmade(self, label: str, **kw) -> Probe:
        headers = forge.signature_headers("GET", self.lab.url(PREVIEWS), **kw)
        return self.lab.call(label=label, headers=headers)

    def no_credentials(self):
        return self.lab.call(label="no signature")

    def impersonate_key(self):
        prepared = self.lab.signed(self.lab.signer, key=self.lab.intruder.private_key)
        return self.lab.send(prepared, label="keyid = the signer's, signed by the intruder")

    def impersonate_claim(self):
        prepared = self.lab.signed(self.lab.ads, key=self.lab.intruder.private_key)
        return self.lab.send(prepared, label="keyid = ads' certificate, signed by the intruder")

    def rogue_ca(self):
        return [
            self.lab.send(
                self.lab.signed(self.lab.rogue_ads), label="keyid = a rogue CA's certificate"
            ),
            self.lab.send(
                self.lab.signed(self.lab.rogue_ads),
                label="the same over mTLS with that certificate",
                cert=self.lab.rogue_ads,
            ),
        ]

    def expired_cert(self):
        return self.lab.send(
            self.lab.signed(self.lab.expired),
            label="signed with an expired certificate, over mTLS with it",
            cert=self.lab.expired,
        )

    def revoked_cert(self):
        return self.lab.send(
            self.lab.signed(self.lab.revoked), label="keyid = a registered, revoked certificate"
        )

    def stolen_replay(self):
        prepared = self.victim_call()
        return self.lab.send(prepared, label="the signer's used request, from another machine")

    def intercepted_unused(self):
        return self.lab.send(
            self.lab.signed(self.lab.signer), label="the signer's request, taken before use"
        )

    def replay(self):
        prepared = self.victim_call()
        return self.lab.send(prepared, label="the same signed request again")

    def tampered_request(self):
        lab = self.lab
        return [
            lab.send(lab.signed(lab.signer), label="a body added", body=b'{"ids": [3]}'),
            lab.send(lab.signed(lab.signer), label="method changed to POST", method="POST"),
            lab.send(
                lab.signed(lab.signer),
                label="path changed (ids=1,2,3)",
                url=lab.url(PREVIEWS_TAMPERED),
            ),
        ]

    def alg_none(self):
        return self.handmade(
            'alg="none"', key_id=self.lab.signer.fingerprint, alg="none", signature=b"none"
        )

    def hs256_public_key(self):
        return self.handmade(
            'alg="hmac-sha256" keyed with the signer\'s public key',
            key_id=self.lab.signer.fingerprint,
            alg="hmac-sha256",
            key=self.lab.signer.public_pem,
        )

    def ecdsa_zero(self):
        return self.handmade(
            "ecdsa-p256-sha256 with r = s = 0",
            key_id=self.lab.signer.fingerprint,
            alg="ecdsa-p256-sha256",
            signature=b"\x00" * 64,
        )

    def kid_injection(self):
        return [
            self.handmade(
                "keyid ../../../../etc/passwd",
                key_id="../../../../etc/passwd",
                alg="hmac-sha256",
                key=b"",
            ),
            self.handmade(
                "keyid x' OR '1'='1",
                key_id="x' OR '1'='1",
                alg="ecdsa-p256-sha256",
                signature=b"\x00" * 64,
            ),
        ]

    def header_keys(self):
        prepared = self.lab.signed(self.lab.signer, key=self.lab.intruder.private_key)
        value = prepared.headers["Signature-Input"] + ';jku="https://attacker.example/jwks"'
        return self.lab.send(
            prepared,
            label="a jku parameter naming the attacker's key",
            headers={"Signature-Input": value},
        )

    def oversized_token(self):
        prepared = self.lab.signed(self.lab.signer)
        return self.lab.send(
            prepared,
            label="1 MB Signature header",
            headers={"Signature": "sig1=:" + "A" * ONE_MB + ":"},
        )

    def unscoped(self):
        return self.lab.send(
            self.lab.signed(self.lab.intruder), label="the intruder's own signature (no scope)"
        )

    def repudiation(self):
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
        prepared = self.victim_call()
        signature = prepared.headers["Signature"]
        return self.lab.audit_proof(
            since, signature, "the signer's request, exported and verified with ca.pem"
        )


MECHANISMS: dict[str, type[Mechanism]] = {
    cls.id: cls
    for cls in (Network, APIKey, MTLS, ServiceJWT, AccessToken, BoundToken, HTTPSignature, Default)
}


# ---------------------------------------------------------------------------- run


@dataclass
class Run:
    cells: list[Cell]
    seconds: float
    started: str

    @property
    def violations(self) -> list[Cell]:
        return [c for c in self.cells if c.violation]

    @property
    def ok(self) -> bool:
        return not self.violations


def run_cell(lab: Lab, profile: Profile, attack_id: str) -> Cell:
    started = time.monotonic()
    expected = "accept" if attack_id in profile.expected_accept else "refuse"
    note = profile.expected_accept.get(attack_id, "")
    mechanism = MECHANISMS[profile.id](lab)
    try:
        probes = mechanism.run(attack_id)
    except NotApplicable as exc:
        return Cell(profile.id, attack_id, "n/a", "-", note=str(exc))
    except Exception as exc:  # the harness failed: reported, and fails the run
        return Cell(
            profile.id,
            attack_id,
            "error",
            expected,
            note=f"{type(exc).__name__}: {str(exc)[:300]}",
            seconds=time.monotonic() - started,
        )
    outcome = "accepted" if any(p.accepted for p in probes) else "refused"
    return Cell(profile.id, attack_id, outcome, expected, probes, note, time.monotonic() - started)


@contextlib.contextmanager
def running_lab(deployment: Deployment, out=print) -> Iterator[Lab]:
    out("[setup] dev PKI, migrations, demo data, principals ...")
    deployment.prepare()
    out("[setup] starting UserService (gunicorn, TLS with client certificates) ...")
    with deployment, tempfile.TemporaryDirectory() as scratch:
        lab = Lab(deployment, Path(scratch), out)
        try:
            out("[setup] attack cast: intruder, signer, revoked, expired, rogue CA, keys, tokens")
            lab.setup()
            yield lab
        finally:
            lab.stop()


def run(deployment: Deployment | None = None, *, out=print) -> Run:
    """Start UserService, run every (profile, attack) cell, stop; return the results."""
    started_at = dt.datetime.now(dt.UTC)
    started = time.monotonic()
    # Refused token requests are the point here, not news: keep the client quiet.
    logging.getLogger("s2s_auth.client.token_manager").setLevel(logging.CRITICAL)
    deployment = deployment or Deployment(ports={"users": DEFAULT_PORTS["users"]})
    cells: list[Cell] = []
    with running_lab(deployment, out) as lab:
        for profile in PROFILES:
            for attack in ATTACKS:
                cell = run_cell(lab, profile, attack.id)
                cells.append(cell)
                if cell.outcome != "n/a":
                    out(_line(cell))
    return Run(cells, time.monotonic() - started, started_at.isoformat(timespec="seconds"))


def _line(cell: Cell) -> str:
    mark = "FAIL " if cell.violation else "ok   "
    shown = cell.outcome + (
        " (EXPECTED)" if cell.outcome == "accepted" and not cell.violation else ""
    )
    reasons = ", ".join(f"{p.status} {p.reason}" for p in cell.probes) or cell.note
    return f"{mark} {cell.profile:<14} {cell.attack:<19} {shown:<20} {reasons}"[:220]


__all__ = [
    "Cell",
    "Lab",
    "NotApplicable",
    "Probe",
    "Run",
    "run",
    "run_cell",
    "verify_exported_record",
]
