"""``python -m fleamarket demo``: the example request end to end, and attacks refused.

The walk: an end user logs in, asks ads for ads nearby, and ads calls users for the
sellers' previews — once over plain mTLS, once with a service JWT over mTLS that
carries the user's context; then the nightly job runs with the worker's own
client-credentials token and no user; then attacks are refused; then the audit log
is verified. Each step prints one line (status, principal, mechanism); the command
exits non-zero as soon as any step behaves differently than expected.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import requests

from fleamarket import devdata
from fleamarket.deployment import TRUST_DOMAIN, Deployment
from s2s_auth.client.auth import (
    ServiceCredentials,
    ServiceJWTAuth,
    end_user_context,
    signature_auth,
)
from s2s_auth.core.ca import CertificateAuthority
from s2s_auth.core.jose import sign
from s2s_auth.identity import spiffe_id

BERLIN = {"lat": "52.52", "lon": "13.405", "radius_km": "10"}
PREVIEWS = "/api/v1/users/previews"


class StepFailed(AssertionError):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


@dataclass
class Walk:
    deployment: Deployment
    scratch: Path
    user_token: str = ""
    started: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())

    # -- plumbing ----------------------------------------------------------------------

    def session(self, cert: str | None = None) -> requests.Session:
        """A caller on this machine: trusts the dev CA, presents ``cert``'s certificate."""
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.deployment.pki_dir / "ca.pem")
        if cert:
            pki = self.deployment.pki_dir
            session.cert = (str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
        return session

    def credentials(self, name: str) -> ServiceCredentials:
        pki = self.deployment.pki_dir
        return ServiceCredentials.from_files(pki / f"{name}.pem", pki / f"{name}.key")

    def users(self, path: str) -> str:
        return f"{self.deployment.url('users')}{path}"

    def ads(self, path: str) -> str:
        return f"{self.deployment.url('ads')}{path}"

    def audit_since(self, since: str) -> list[dict]:
        out = self.deployment.manage("users", "s2s_audit", "export", "--since", since).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def restart_ads(self, mechanism: str) -> None:
        self.deployment.stop_service("ads")
        self.deployment.extra_env.setdefault("ads", {})["USERS_SERVICE_MECHANISM"] = mechanism
        self.deployment.start_service("ads")

    def previews(self, session: requests.Session, **kwargs) -> requests.Response:
        kwargs.setdefault("params", {"ids": "1,2"})
        return session.get(self.users(PREVIEWS), timeout=10, **kwargs)

    # -- the example request -----------------------------------------------------------

    def login(self) -> str:
        password = devdata.dev_password(devdata.DEMO_USER)
        response = self.session().post(
            self.users("/api/v1/auth/login"),
            json={"username": devdata.DEMO_USER, "password": password},
            timeout=10,
        )
        expect(response.status_code == 200, f"login answered {response.status_code}")
        self.user_token = response.json()["access_token"]
        return f"end user {devdata.DEMO_USER} logs in at users: 200, a user access token"

    def nearby(self, mechanism: str) -> str:
        self.restart_ads(mechanism)
        since = dt.datetime.now(dt.UTC).isoformat()
        response = self.session().get(
            self.ads("/api/v1/ads/nearby"),
            params=BERLIN,
            headers={"Authorization": f"Bearer {self.user_token}"},
            timeout=10,
        )
        expect(response.status_code == 200, f"nearby answered {response.status_code}")
        results = response.json()["results"]
        with_seller = sum(1 for ad in results if ad["seller"])
        expect(results and with_seller == len(results), f"{with_seller}/{len(results)} previews")
        calls = [r for r in self.audit_since(since) if r["path"] == PREVIEWS]
        expect(len(calls) == 1, f"users saw {len(calls)} previews calls, expected one")
        call = calls[0]
        expect(call["outcome"] == "accepted" and call["mechanism"] == mechanism, f"{call}")
        user = f", for end user {call['end_user']}" if call["end_user"] else ""
        return (
            f"user → ads nearby: 200, {len(results)} ads; ads → users previews: one call, "
            f"{call['mechanism']} as {call['principal']}{user}"
        )

    def nightly_job(self) -> str:
        self.deployment.start_worker()
        since = dt.datetime.now(dt.UTC).isoformat()
        app = self.deployment.celery_app()
        summary = app.send_task("jobs.expire_stale_ads").get(timeout=60)
        expect(summary["token_requests"] == 1, f"job summary {summary}")
        calls = [r for r in self.audit_since(since) if r["path"].endswith("/notifications")]
        expect(calls, "the job made no notification call")
        mechanisms = {(r["mechanism"], r["principal"], r["end_user"]) for r in calls}
        expect(len(mechanisms) == 1, f"calls by {mechanisms}")
        mechanism, principal, end_user = mechanisms.pop()
        expect(mechanism == "access_token" and not end_user, f"{mechanism}, {end_user}")
        return (
            f"nightly job expire_stale_ads: {summary.get('expired', '?')} ads expired, "
            f"{len(calls)} notification calls with one client-credentials token, "
            f"{mechanism} as {principal}, no end user"
        )

    # -- attacks -----------------------------------------------------------------------

    def no_certificate(self) -> str:
        response = self.previews(self.session())
        expect(response.status_code == 401, f"got {response.status_code}")
        expect("WWW-Authenticate" in response.headers, "no WWW-Authenticate")
        return f"attack: no client certificate: 401 {response.json()['error']}"

    def rogue_ca(self) -> str:
        rogue = CertificateAuthority(self.scratch / "rogue", "fleamarket.local")
        rogue.init()
        issued = rogue.issue("ads")
        session = self.session()
        session.cert = (str(issued.cert_path), str(issued.key_path))
        try:
            response = self.previews(session)
        except requests.exceptions.SSLError:
            return "attack: certificate from a rogue CA claiming to be ads: TLS handshake refused"
        expect(response.status_code == 403, f"got {response.status_code}")
        return f"attack: certificate from a rogue CA: 403 {response.json()['error']}"

    def stolen_bound_token(self) -> str:
        token = (
            self.session("worker")
            .post(
                self.users("/oauth/token"),
                data={
                    "grant_type": "client_credentials",
                    "client_id": "worker",
                    "scope": "users:read",
                },
                timeout=10,
            )
            .json()["access_token"]
        )
        bearer = {"Authorization": f"Bearer {token}"}
        elsewhere = self.previews(self.session(), headers=bearer)
        other_cert = self.previews(self.session("ads"), headers=bearer)
        expect(elsewhere.status_code == 401, f"without a certificate: {elsewhere.status_code}")
        expect(other_cert.status_code == 403, f"with ads' certificate: {other_cert.status_code}")
        return (
            "attack: the worker's certificate-bound token stolen and replayed: "
            f"{elsewhere.status_code} {elsewhere.json()['error']} without a certificate, "
            f"{other_cert.status_code} {other_cert.json()['error']} with another one"
        )

    def tampered_signed_request(self) -> str:
        session = self.session("ads")
        signed = requests.Request("GET", self.users(PREVIEWS), params={"ids": "1,2"}).prepare()
        signature_auth(self.credentials("ads"))(signed)
        honest = session.send(signed, timeout=10)
        # The attacker changes the query in flight; without ads' key it cannot re-sign.
        signed.prepare_url(self.users(PREVIEWS), {"ids": "1,2,3,4,5"})
        tampered = session.send(signed, timeout=10)
        expect(honest.status_code == 200, f"the honest signed request got {honest.status_code}")
        expect(tampered.status_code == 403, f"the tampered one got {tampered.status_code}")
        return (
            f"attack: a signed request with its query changed in flight: honest 200, "
            f"tampered 403 {tampered.json()['error']}"
        )

    def forged_user_context(self) -> str:
        from cryptography.hazmat.primitives.asymmetric import ec

        now = int(time.time())
        forged = sign(
            {
                "iss": self.deployment.url("users"),
                "sub": "1",
                "aud": "fleamarket",
                "iat": now,
                "exp": now + 300,
                "jti": "forged",
                "scope": "ads:write",
            },
            ec.generate_private_key(ec.SECP256R1()),
            kid="attacker",
            typ="at+jwt",
        )
        session = self.session("ads")
        audience = spiffe_id("users", TRUST_DOMAIN)
        session.auth = ServiceJWTAuth(self.credentials("ads"), audience, send_x5c=False)
        with end_user_context(forged):
            response = self.previews(session)
        expect(response.status_code == 403, f"got {response.status_code}")
        return f"attack: ads forwards a forged end-user token: 403 {response.json()['error']}"

    def unscoped_service(self) -> str:
        response = self.previews(self.session("proxy"))
        expect(response.status_code == 403, f"got {response.status_code}")
        expect(response.json()["error"] == "insufficient_scope", f"got {response.json()}")
        return f"attack: a known service without users:read: 403 {response.json()['error']}"

    def forged_proxy_header(self) -> str:
        pem = quote((self.deployment.pki_dir / "ads.pem").read_text(), safe="")
        headers = {"X-SSL-Client-Cert": pem, "X-Forwarded-Client-Cert": f'Cert="{pem}"'}
        response = self.previews(self.session(), headers=headers)
        expect(response.status_code == 401, f"got {response.status_code}")
        return "attack: ads' certificate in a proxy header from a client that is no proxy: 401"

    def revoked(self) -> str:
        ca = self.deployment.ca()
        issued = ca.issue("demo-revoked")
        self.deployment.manage(
            "users", "s2s_service", "add", "demo-revoked", "--scope", "users:read", "--no-secret"
        )
        session = self.session()
        session.cert = (str(issued.cert_path), str(issued.key_path))
        before = self.previews(session).status_code
        ca.revoke(str(issued.serial))
        response = self.previews(session)
        expect(before == 200 and response.status_code == 403, f"{before}, {response.status_code}")
        expect(response.json()["error"] == "revoked", f"got {response.json()}")
        return "attack: a certificate revoked while in use: 200 before, 403 revoked after"

    # -- the proof ---------------------------------------------------------------------

    def audit_verify(self) -> str:
        result = self.deployment.manage("users", "s2s_audit", "verify")
        records = len(self.audit_since(self.started))
        return f"s2s_audit verify: {result.stdout.strip().splitlines()[-1]} ({records} records)"


def steps(walk: Walk) -> list[tuple[str, Callable[[], str]]]:
    return [
        ("end user logs in", walk.login),
        ("example request over mTLS", lambda: walk.nearby("mtls")),
        ("example request with service JWTs", lambda: walk.nearby("service_jwt")),
        ("nightly job, no user", walk.nightly_job),
        ("attack: no certificate", walk.no_certificate),
        ("attack: rogue CA", walk.rogue_ca),
        ("attack: stolen bound token", walk.stolen_bound_token),
        ("attack: tampered signed request", walk.tampered_signed_request),
        ("attack: forged user context", walk.forged_user_context),
        ("attack: service without the scope", walk.unscoped_service),
        ("attack: forged proxy header", walk.forged_proxy_header),
        ("attack: revoked certificate", walk.revoked),
        ("audit log verified", walk.audit_verify),
    ]


def run(deployment: Deployment, *, keep_running: bool = False, out=print) -> bool:
    from fleamarket.cli import print_where, wait_for_stop

    started = time.monotonic()
    out("[setup] dev PKI, migrations, demo data, principals ...")
    deployment.prepare()
    out("[setup] starting users and ads (gunicorn, TLS with client certificates) ...")
    with deployment, tempfile.TemporaryDirectory() as scratch:
        walk = Walk(deployment, Path(scratch))
        plan = steps(walk)
        failures = 0
        for number, (title, step) in enumerate(plan, start=1):
            prefix = f"[{number}/{len(plan)}]"
            try:
                out(f"{prefix} ok    {step()}")
            except Exception as exc:  # a misbehaving step is reported, not raised
                failures += 1
                out(f"{prefix} FAIL  {title}: {type(exc).__name__}: {exc}")
        elapsed = time.monotonic() - started
        verdict = (
            "every step behaved as expected" if not failures else f"{failures} step(s) misbehaved"
        )
        out(f"\n{verdict} ({elapsed:.1f} s)")
        if keep_running and not failures:
            print_where(deployment)
            out("\nThe deployment keeps running for exploring; Ctrl-C stops it.")
            with contextlib.suppress(KeyboardInterrupt):
                wait_for_stop()
    return failures == 0
