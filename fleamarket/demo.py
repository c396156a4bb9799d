"""``python -m fleamarket demo``: the example request end to end, and attacks refused.

Each step prints one line (status, principal, mechanism). The walk fails, and the
command exits non-zero, as soon as any step behaves differently than expected.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import requests

from fleamarket.deployment import Deployment
from s2s_auth.pki import CertificateAuthority

BERLIN = {"lat": "52.52", "lon": "13.405", "radius_km": "10"}


class StepFailed(AssertionError):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


@dataclass
class Walk:
    deployment: Deployment
    scratch: Path

    def session(self, cert: str | None = None) -> requests.Session:
        """A caller on this machine: trusts the dev CA, optionally presents ``cert``."""
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.deployment.pki_dir / "ca.pem")
        if cert:
            pki = self.deployment.pki_dir if "/" not in cert else Path(cert).parent
            name = Path(cert).name
            session.cert = (str(pki / f"{name}.pem"), str(pki / f"{name}.key"))
        return session

    def users(self, path: str) -> str:
        return f"{self.deployment.url('users')}{path}"

    def ads(self, path: str) -> str:
        return f"{self.deployment.url('ads')}{path}"

    # -- the example request ---------------------------------------------------------

    def nearby_over_mtls(self) -> str:
        response = self.session().get(self.ads("/api/v1/ads/nearby"), params=BERLIN, timeout=10)
        expect(response.status_code == 200, f"nearby answered {response.status_code}")
        results = response.json()["results"]
        with_seller = sum(1 for ad in results if ad["seller"])
        expect(results and with_seller == len(results), f"{with_seller}/{len(results)} previews")
        return (
            f"end user → ads nearby: 200, {len(results)} ads; ads → users previews over mTLS: "
            f"{with_seller} seller previews in one call"
        )

    def whoami_ads(self) -> str:
        response = self.session("ads").get(self.users("/api/v1/auth/whoami"), timeout=10)
        expect(response.status_code == 200, f"whoami answered {response.status_code}")
        body = response.json()
        expect(body["name"] == "ads" and body["mechanism"] == "mtls", f"whoami said {body}")
        return (
            f"users sees the caller as {body['spiffe_id']} via {body['mechanism']}, "
            f"scopes {body['scopes']}"
        )

    # -- attacks -----------------------------------------------------------------------

    def previews(self, session: requests.Session, **kwargs) -> requests.Response:
        return session.get(
            self.users("/api/v1/users/previews"), params={"ids": "1,2"}, timeout=10, **kwargs
        )

    def no_certificate(self) -> str:
        response = self.previews(self.session())
        expect(response.status_code == 401, f"got {response.status_code}")
        expect("WWW-Authenticate" in response.headers, "no WWW-Authenticate")
        return f"no client certificate: 401 {response.json()['error']}"

    def rogue_ca(self) -> str:
        rogue = CertificateAuthority(self.scratch / "rogue", "fleamarket.local")
        rogue.init()
        issued = rogue.issue("ads")
        session = self.session()
        session.cert = (str(issued.cert_path), str(issued.key_path))
        try:
            response = self.previews(session)
        except requests.exceptions.SSLError:
            return "certificate from a rogue CA claiming to be ads: TLS handshake refused"
        expect(response.status_code == 403, f"got {response.status_code}")
        return f"certificate from a rogue CA claiming to be ads: 403 {response.json()['error']}"

    def unscoped_service(self) -> str:
        response = self.previews(self.session("proxy"))
        expect(response.status_code == 403, f"got {response.status_code}")
        expect(
            response.json()["error"] == "unknown_principal"
            or response.json()["error"] == "insufficient_scope",
            f"got {response.json()}",
        )
        return f"valid certificate of a service without users:read: 403 {response.json()['error']}"

    def forged_proxy_header(self) -> str:
        pem = (self.deployment.pki_dir / "ads.pem").read_text()
        response = self.previews(
            self.session(),
            headers={
                "X-SSL-Client-Cert": quote(pem, safe=""),
                "X-Forwarded-Client-Cert": f'Cert="{quote(pem, safe="")}"',
            },
        )
        expect(response.status_code == 401, f"got {response.status_code}")
        return "ads' certificate in a proxy header from an untrusted client: ignored, 401"

    def revoked(self) -> str:
        ca = CertificateAuthority(self.deployment.pki_dir, "fleamarket.local")
        issued = ca.issue("demo-revoked")
        self.deployment.manage(
            "users", "s2s_service", "add", "demo-revoked", "--scope", "users:read"
        )
        session = self.session()
        session.cert = (str(issued.cert_path), str(issued.key_path))
        before = self.previews(session).status_code
        ca.revoke(str(issued.serial))
        response = self.previews(session)
        expect(
            before == 200 and response.status_code == 403,
            f"got {before} then {response.status_code}",
        )
        expect(response.json()["error"] == "revoked", f"got {response.json()}")
        return "certificate revoked while in use: 200 before, 403 revoked after (no restart)"


def steps(walk: Walk) -> list[tuple[str, Callable[[], str]]]:
    return [
        ("example request over mTLS", walk.nearby_over_mtls),
        ("who is calling", walk.whoami_ads),
        ("attack: no certificate", walk.no_certificate),
        ("attack: rogue CA", walk.rogue_ca),
        ("attack: service without the scope", walk.unscoped_service),
        ("attack: forged proxy header", walk.forged_proxy_header),
        ("attack: revoked certificate", walk.revoked),
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
            except (StepFailed, requests.RequestException, KeyError, ValueError) as exc:
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
