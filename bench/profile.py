"""In-process cost of each mechanism: µs per authenticated request, and where it goes.

Django's test client against one protected view (``S2S_AUTH["MECHANISMS"]`` with every
mechanism, one scope required) of s2s_auth's own test project (``--project users``: the
users service's own settings, middleware and ``/api/v1/service-ping``), with a fresh SQLite
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
    python -m bench.profile --project users      # the deployment's stack, beside PingView

``--callgrind`` counts instructions instead (deterministic on a shared machine): run it
under callgrind as below; each case's measured requests land in one dump part (the
``summary:`` line of each non-empty ``cg.out.<pid>.<n>``, in case order, divided by
``-n``). The principal cache is refreshed hourly then (at valgrind's pace, every second
would be every few requests). Single-use credentials expire: leave out ``service_jwt``::

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=starmap_next \
        --dump-before=zlib_crc32 --callgrind-out-file=cg.out.%p \
        python -m bench.profile --callgrind --project users -n 200 --repeat 1 \
        --mechanism ping --mechanism mtls --mechanism access_token

The ``ping`` case is the same stack's open view without authentication (the users
service's ``PingView``, or a bench-only one in the test project): the distance from it
is what authentication and the s2s plumbing add.
``--no-principal-cache`` sets ``PRINCIPAL_CACHE_SECONDS`` to 0 (a SELECT per request).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import itertools
import json
import os
import pstats
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MECHANISMS = ["mtls", "service_jwt", "access_token", "http_signature", "api_key"]
#: An access token sent over mTLS, as the bench's access_token cases send it (the
#: client certificate is verified too, though the token is not bound to it).
EXTRA = ["access_token_mtls"]
#: The no-auth baseline of the same stack (not a mechanism: no credential).
BASELINE = "ping"
CASES = [BASELINE, *MECHANISMS, *EXTRA]
ORIGIN = "http://testserver"


class Project:
    """Which Django project is profiled: its settings, paths and the scope the
    protected view requires."""

    def __init__(self, name: str):
        self.name = name
        if name == "users":
            self.settings = "users.settings"
            self.path, self.ping_path, self.scope = (
                "/api/v1/service-ping",
                "/api/v1/ping",
                "users:read",
            )
        else:
            self.settings = "tests.s2s_auth.settings"
            self.path, self.ping_path, self.scope = (
                "/service/scoped",
                "/bench-ping",
                "test:read",
            )


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


def _setup(
    workdir: Path, project: Project, *, audit: bool, principal_cache: bool, slow: bool = False
):
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
    if principal_cache and slow:  # under valgrind: no refresh every few requests
        cache = {"PRINCIPAL_CACHE_SECONDS": 3600, "PRINCIPAL_CACHE_CHECK_SECONDS": 3600}
    urls = {} if project.name == "users" else {"ROOT_URLCONF": "bench.profile_urls"}
    # The users service is the CA host; `up` and the bench give it a CRL_URL.
    crl = {"CRL_URL": "https://127.0.0.1:8001/pki/crl"} if project.name == "users" else {}
    overrides = override_settings(
        ALLOWED_HOSTS=["testserver"],
        **urls,
        S2S_AUTH={
            "SERVICE_NAME": "users",
            "TRUST_DOMAIN": "fleamarket.local",
            "PKI_DIR": str(ca.directory),
            "HTTPSIG_ORIGIN": ORIGIN,
            "MECHANISMS": ["service_jwt", "http_signature", "access_token", "api_key", "mtls"],
            "ACCESS_TOKEN_ISSUER": "https://issuer.test",
            "JWKS_URL": jwks.url,
            "AUDIT_ENABLED": audit,
            **crl,
            # (a release without the principal cache: nothing to set)
            **(cache if "PRINCIPAL_CACHE_SECONDS" in DEFAULTS else {}),
        },
    )
    overrides.enable()
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    return issued, signing_key


def _requests(issued, signing_key, n: int, project: Project) -> dict:
    """``case -> (path, list of test-client kwargs)``, ``n`` each (fresh where single-use)."""
    import requests

    from s2s_auth.client.auth import ServiceCredentials, ServiceJWTAuth, signature_auth
    from s2s_auth.core.jose import new_jti, sign
    from s2s_auth.credentials.apikeys import create_key
    from s2s_auth.credentials.certificates import register_certificate
    from s2s_auth.credentials.principals import ensure_principal

    principal, _ = ensure_principal("caller", [project.scope])
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
            "scope": project.scope,
            "iat": now,
            "exp": now + 3600,
            "jti": new_jti(),
        },
        signing_key,
        kid="k1",
        typ="at+jwt",
    )
    jwt_auth = ServiceJWTAuth(creds, "users", send_x5c=False)  # as ads sends them
    sig_auth = signature_auth(creds)

    def signed():
        prepared = requests.Request("GET", ORIGIN + project.path).prepare()
        headers = sig_auth(prepared).headers
        return {
            "HTTP_" + k.upper().replace("-", "_"): v
            for k, v in headers.items()
            if k.lower() not in ("content-length", "content-type")
        }

    calls = {
        "ping": [{}] * n,
        "mtls": [{"SSL_CLIENT_CERT": pem}] * n,
        # Over mTLS, as the deployment sends them (the peer certificate is the key).
        "service_jwt": [
            {"SSL_CLIENT_CERT": pem, "HTTP_AUTHORIZATION": f"ServiceJWT {jwt_auth.token()}"}
            for _ in range(n)
        ],
        "access_token": [{"HTTP_AUTHORIZATION": f"Bearer {access_token}"}] * n,
        "access_token_mtls": [
            {"SSL_CLIENT_CERT": pem, "HTTP_AUTHORIZATION": f"Bearer {access_token}"}
        ]
        * n,
        "http_signature": [signed() for _ in range(n)],
        "api_key": [{"HTTP_AUTHORIZATION": f"ApiKey {api_key}"}] * n,
    }
    return {
        name: (project.ping_path if name == BASELINE else project.path, kwargs)
        for name, kwargs in calls.items()
    }


def timed(one, calls: list[dict], *, callgrind: bool = False) -> tuple[float, float]:
    """(wall, CPU) seconds of ``one(extra)`` for every ``extra`` of ``calls``.

    ``callgrind``: each call runs inside ``itertools.starmap`` (callgrind collects
    only there, ``--toggle-collect=starmap_next``), between two ``zlib.crc32`` calls
    (``--dump-before=zlib_crc32`` starts a new dump part). Shared with
    ``bench.token_profile``."""
    start, cpu = time.perf_counter(), time.process_time()
    if callgrind:
        zlib.crc32(b"start")
        for _ in itertools.starmap(one, ((extra,) for extra in calls)):
            pass
        zlib.crc32(b"end")
    else:
        for extra in calls:
            one(extra)
    return time.perf_counter() - start, time.process_time() - cpu


def _run(client, path: str, calls: list[dict], *, callgrind=False) -> tuple[float, float]:
    """(wall, CPU) seconds for all ``calls`` of ``path``; every one must be a 200."""

    def one(extra):
        response = client.get(path, **extra)
        if response.status_code != 200:
            raise SystemExit(f"{response.status_code}: {response.content[:300]!r}")

    return timed(one, calls, callgrind=callgrind)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="requests per mechanism")
    parser.add_argument("--mechanism", action="append", choices=CASES)
    parser.add_argument("--profile", choices=CASES, help="print this one's cProfile")
    parser.add_argument(
        "--project",
        choices=["tests", "users"],
        default="tests",
        help="s2s_auth's test project (default) or the users service's own stack",
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best is kept")
    parser.add_argument("--top", type=int, default=25, help="cProfile rows (cumulative)")
    parser.add_argument("--audit", action="store_true", help="keep the audit INSERT on")
    parser.add_argument("--no-principal-cache", action="store_true")
    parser.add_argument("--json", action="store_true", help="one JSON line")
    parser.add_argument(
        "--callgrind", action="store_true", help="mark each case for callgrind (see above)"
    )
    options = parser.parse_args(argv)
    project = Project(options.project)
    os.environ["DJANGO_SETTINGS_MODULE"] = project.settings
    os.environ.pop("DATABASE_URL", None)  # the project's own SQLite file
    for name in ("USERS_DATABASE_URL", "CACHE_URL", "LOG_LEVEL", "DJANGO_DEBUG"):
        os.environ.pop(name, None)
    if project.name == "users":  # a throwaway var/ (database, keys, PKI)
        import tempfile

        os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="bench_profile_")
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    if project.name != "users":  # the users service keeps its own LOGGING (INFO)
        import logging

        logging.getLogger("s2s_auth").setLevel(logging.WARNING)
    workdir = Path(os.environ["VAR_DIR"]) if project.name == "users" else Path(settings.BASE_DIR)
    issued, signing_key = _setup(
        workdir,
        project,
        audit=options.audit,
        principal_cache=not options.no_principal_cache,
        slow=options.callgrind,
    )
    client = Client()
    chosen = options.mechanism or CASES
    if options.profile and options.profile not in chosen:
        chosen.append(options.profile)
    calls = _requests(issued, signing_key, options.n * options.repeat + 50, project)
    results = {}
    for name in chosen:
        path, kwargs = calls[name]
        _run(client, path, kwargs[:50])  # warm: imports, JWKS fetch, caches
        profiler = cProfile.Profile() if name == options.profile else None
        rounds = []
        with profiler or contextlib.nullcontext():
            for r in range(options.repeat):
                start = 50 + r * options.n
                batch = kwargs[start : start + options.n]
                rounds.append(_run(client, path, batch, callgrind=options.callgrind))
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
        base = results.get(BASELINE, {}).get("cpu_us")
        print(f"{'case':16} {'wall µs':>9} {'CPU µs':>9} {'ping/case':>9}  per request")
        for name, us in results.items():
            ratio = f"{base / us['cpu_us']:9.2f}" if base and us["cpu_us"] else f"{'-':>9}"
            print(f"{name:16} {us['wall_us']:9.1f} {us['cpu_us']:9.1f} {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
