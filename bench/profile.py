"""In-process cost of each mechanism: µs per authenticated request, and where it goes.

Django's test client against one protected view (``S2S_AUTH["MECHANISMS"]`` with every
mechanism, one scope required) of s2s_auth's own test project, with a fresh SQLite
database, a throwaway CA and a JWKS served on loopback. No network between caller and
view: the figures are the server's CPU per request (middleware, DRF, the mechanism,
the principal lookup), the numbers to compare before and after a change of the hot
path. Wall and CPU time are both printed: the replay store (the database cache on a
SQLite file) waits for the disk, so run it with ``TMPDIR=/dev/shm`` to see the CPU.
Credentials that are single-use (service JWTs, signed requests) are made before the
clock starts. The audit middleware's INSERT is off unless ``--audit``::

    python -m bench.profile                      # every mechanism, µs per request
    python -m bench.profile --profile mtls       # plus the cProfile of that one
    python -m bench.profile --audit -n 2000

``--no-principal-cache`` sets ``PRINCIPAL_CACHE_SECONDS`` to 0 (a SELECT per request).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MECHANISMS = ["mtls", "service_jwt", "access_token", "http_signature", "api_key"]
PATH = "/service/scoped"
ORIGIN = "http://testserver"


class _JWKS:
    """The issuer's JWKS on loopback (access tokens fetch it once)."""

    def __init__(self, jwks: dict):
        body = json.dumps(jwks).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def _setup(workdir: Path, *, audit: bool, principal_cache: bool):
    """Database, CA, principal, credentials; the S2S_AUTH override to enable."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from django.core.management import call_command
    from django.test.utils import override_settings

    from s2s_auth.conf import DEFAULTS
    from s2s_auth.core.ca import CertificateAuthority
    from s2s_auth.core.jwk import public_jwk

    ca = CertificateAuthority(workdir / "pki", "fleamarket.local")
    ca.init()
    issued = ca.issue("caller")
    signing_key = ec.generate_private_key(ec.SECP256R1())
    jwks = _JWKS({"keys": [public_jwk(signing_key.public_key(), "k1")]})
    cache = {"PRINCIPAL_CACHE_SECONDS": 2 if principal_cache else 0}
    overrides = override_settings(
        S2S_AUTH={
            "SERVICE_NAME": "users",
            "TRUST_DOMAIN": "fleamarket.local",
            "PKI_DIR": str(ca.directory),
            "HTTPSIG_ORIGIN": ORIGIN,
            "MECHANISMS": ["service_jwt", "http_signature", "access_token", "api_key", "mtls"],
            "ACCESS_TOKEN_ISSUER": "https://issuer.test",
            "JWKS_URL": jwks.url,
            "AUDIT_ENABLED": audit,
            # (a release without the principal cache: nothing to set)
            **(cache if "PRINCIPAL_CACHE_SECONDS" in DEFAULTS else {}),
        }
    )
    overrides.enable()
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    return issued, signing_key


def _requests(issued, signing_key, n: int) -> dict:
    """``mechanism -> list of test-client kwargs``, ``n`` each (fresh where single-use)."""
    import requests

    from s2s_auth.client.auth import ServiceCredentials, ServiceJWTAuth, signature_auth
    from s2s_auth.core.jose import new_jti, sign
    from s2s_auth.credentials.apikeys import create_key
    from s2s_auth.credentials.certificates import register_certificate
    from s2s_auth.credentials.principals import ensure_principal

    principal, _ = ensure_principal("caller", ["test:read"])
    register_certificate(principal, issued.cert_path.read_text())
    creds = ServiceCredentials.from_files(issued.cert_path, issued.key_path)
    pem = issued.cert_path.read_text()
    _, api_key = create_key(principal)
    now = int(time.time())
    access_token = sign(
        {
            "iss": "https://issuer.test",
            "sub": "spiffe://fleamarket.local/service/caller",
            "aud": "spiffe://fleamarket.local/service/users",
            "client_id": "caller",
            "scope": "test:read",
            "iat": now,
            "exp": now + 3600,
            "jti": new_jti(),
        },
        signing_key,
        kid="k1",
        typ="at+jwt",
    )
    jwt_auth = ServiceJWTAuth(creds, "users")
    sig_auth = signature_auth(creds)

    def signed():
        prepared = requests.Request("GET", ORIGIN + PATH).prepare()
        headers = sig_auth(prepared).headers
        return {
            "HTTP_" + k.upper().replace("-", "_"): v
            for k, v in headers.items()
            if k.lower() not in ("content-length", "content-type")
        }

    return {
        "mtls": [{"SSL_CLIENT_CERT": pem}] * n,
        # Over mTLS, as the deployment sends them (the peer certificate is the key).
        "service_jwt": [
            {"SSL_CLIENT_CERT": pem, "HTTP_AUTHORIZATION": f"ServiceJWT {jwt_auth.token()}"}
            for _ in range(n)
        ],
        "access_token": [{"HTTP_AUTHORIZATION": f"Bearer {access_token}"}] * n,
        "http_signature": [signed() for _ in range(n)],
        "api_key": [{"HTTP_AUTHORIZATION": f"ApiKey {api_key}"}] * n,
    }


def _run(client, calls: list[dict]) -> tuple[float, float]:
    """(wall, CPU) seconds for all ``calls``; every one must be a 200."""
    start, cpu = time.perf_counter(), time.process_time()
    for extra in calls:
        response = client.get(PATH, **extra)
        if response.status_code != 200:
            raise SystemExit(f"{response.status_code}: {response.content[:300]!r}")
    return time.perf_counter() - start, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="requests per mechanism")
    parser.add_argument("--mechanism", action="append", choices=MECHANISMS)
    parser.add_argument("--profile", choices=MECHANISMS, help="print this one's cProfile")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best is kept")
    parser.add_argument("--top", type=int, default=25, help="cProfile rows (cumulative)")
    parser.add_argument("--audit", action="store_true", help="keep the audit INSERT on")
    parser.add_argument("--no-principal-cache", action="store_true")
    parser.add_argument("--json", action="store_true", help="one JSON line")
    options = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.s2s_auth.settings")
    os.environ.pop("DATABASE_URL", None)  # the test project's own SQLite file
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    settings.LOGGING_CONFIG = None
    import logging

    logging.getLogger("s2s_auth").setLevel(logging.WARNING)
    issued, signing_key = _setup(
        Path(settings.BASE_DIR), audit=options.audit, principal_cache=not options.no_principal_cache
    )
    client = Client()
    chosen = options.mechanism or MECHANISMS
    if options.profile and options.profile not in chosen:
        chosen.append(options.profile)
    calls = _requests(issued, signing_key, options.n * options.repeat + 50)
    results = {}
    for name in chosen:
        _run(client, calls[name][:50])  # warm: imports, JWKS fetch, caches
        profiler = cProfile.Profile() if name == options.profile else None
        rounds = []
        with profiler or contextlib.nullcontext():
            for r in range(options.repeat):
                start = 50 + r * options.n
                rounds.append(_run(client, calls[name][start : start + options.n]))
        wall, cpu = min(rounds, key=lambda pair: pair[1])  # the least disturbed round
        results[name] = {
            "wall_us": round(wall / options.n * 1e6, 1),
            "cpu_us": round(cpu / options.n * 1e6, 1),
        }
        if profiler is not None:
            stats = pstats.Stats(profiler, stream=sys.stderr)
            stats.sort_stats("cumulative").print_stats(options.top)
            stats.sort_stats("tottime").print_stats(options.top)
    if options.json:
        print(json.dumps({"us_per_request": results, "n": options.n, "audit": options.audit}))
    else:
        print(f"{'mechanism':16} {'wall µs':>9} {'CPU µs':>9}  per request")
        for name, us in results.items():
            print(f"{name:16} {us['wall_us']:9.1f} {us['cpu_us']:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
