"""The lab: a live UserService, the cast of identities, and helpers to call it.

:func:`running_lab` starts the deployment's UserService (gunicorn, TLS with client
certificates, the default ``S2S_AUTH["MECHANISMS"]``) and, for the API-key profile, a
second UserService process on the same database started with
``S2S_MECHANISMS=service_jwt,http_signature,access_token,api_key,mtls`` and
``S2S_REGISTRATION_OPEN=1`` (for the squatting attack); it prepares the
cast (:mod:`.cast`) and stops everything on the way out. A :class:`Lab` call is one
request, answered as a :class:`~.results.Probe`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests
from jwt.algorithms import ECAlgorithm

from fleamarket import devdata
from fleamarket.deployment import DEFAULT_PORTS, Deployment
from fleamarket.processes import free_port
from s2s_auth.client.exchange import TokenExchanger
from s2s_auth.client.token_manager import TokenEndpointError, TokenManager

from . import cast, evidence, forge
from .forge import Identity, spiffe
from .results import Probe

PREVIEWS = "/api/v1/users/previews?ids=1,2"
PREVIEWS_TAMPERED = "/api/v1/users/previews?ids=1,2,3"
PING = "/api/v1/ping"
API_KEY_MECHANISMS = "service_jwt,http_signature,access_token,api_key,mtls"
TIMEOUT = 10


def ads_authority(lab) -> str:
    """AdService's host:port (it need not run): what a request meant for ads names."""
    port = DEFAULT_PORTS["ads"]
    users = int(lab.url("").rsplit(":", 1)[1])
    return f"127.0.0.1:{port if port != users else port + 1}"


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


def _short(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("SSLError(", "[SSL", "Connection aborted", "RemoteDisconnected"):
        if marker in text:
            text = text[text.index(marker) :]
            break
    return text[:160]


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
        #: The audit export of the run starts here.
        self.started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        ca, rogue_directory = cast.issue_certificates(self.pki, self.scratch)
        self.ca = ca
        self.ads = self.identity("ads")
        self.worker = self.identity("worker")
        self.intruder = self.identity("intruder")
        self.signer = self.identity("attack-signer")
        self.revoked = self.identity("attack-revoked")
        self.expired = self.identity("attack-expired")
        self.rogue_ads = self.identity("ads", rogue_directory)
        # A certificate of ads' with the intruder's key: what "stealing" a certificate gives.
        self.ads_cert_intruder_key = Identity("ads", self.ads.cert_path, self.intruder.key_path)
        self.api_keys = cast.create_principals(self.deployment)

        # UserService with API keys enabled, on the same database.
        self.keyserver = Deployment(
            var=self.deployment.var,
            ports={"users": free_port()},
            database_urls=dict(self.deployment.database_urls),
            # Registration open here, for the squatting attack (closed on the default one).
            extra_env={
                "users": {"S2S_MECHANISMS": API_KEY_MECHANISMS, "S2S_REGISTRATION_OPEN": "1"}
            },
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

    def user_token(self) -> str:
        """The demo end user logs in at UserService: their access token."""
        with self.session() as session:
            response = session.post(
                self.url("/api/v1/auth/login"),
                json={
                    "username": devdata.DEMO_USER,
                    "password": devdata.dev_password(devdata.DEMO_USER),
                },
                timeout=TIMEOUT,
            )
        if response.status_code != 200:
            raise RuntimeError(f"the demo user's login answered {response.status_code}")
        return response.json()["access_token"]

    def exchanged(self, name: str, user_token: str, audience: str = "users") -> str:
        """What ``name`` gets by exchanging ``user_token`` for ``audience`` (RFC 8693)."""
        identity = self.identity(name)
        exchanger = TokenExchanger(
            self.url("/oauth/token"),
            client_id=name,
            cert=identity.cert,
            auth_method="tls_client_auth",
            ca_bundle=self.ca_file,
            max_attempts=1,
        )
        try:
            return exchanger.token_for(user_token, spiffe(audience))
        finally:
            exchanger.close()

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
        """Export the audit records since ``since`` and prove, as a third party with
        nothing but the CA certificate (ca.pem), the accepted one holding
        ``credential_part`` (see :mod:`.evidence`)."""
        result = self.deployment.manage(
            "users", "s2s_audit", "export", "--since", since.isoformat()
        )
        records = evidence.parse_export(result.stdout)
        matches = [
            r
            for r in records
            if r["outcome"] == "accepted" and credential_part and credential_part in r["credential"]
        ]
        if not matches:
            return Probe(label, True, "proof", "no_record", "no accepted record holds it")
        record = matches[-1]
        try:
            evidence.check_links(records)
            detail = evidence.verify_exported_record(record, Path(self.ca_file).read_bytes())
        except Exception as exc:  # any failure means: no proof
            return Probe(label, True, "proof", "proof_failed", f"{type(exc).__name__}: {exc}")
        return Probe(label, False, "proof", "denial_refuted", f"record {record['id']}: {detail}")


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


__all__ = ["PING", "PREVIEWS", "PREVIEWS_TAMPERED", "Lab", "ads_authority", "running_lab"]
