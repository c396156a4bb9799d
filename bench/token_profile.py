"""In-process cost of the OAuth2 token endpoint: µs per token, and where it goes.

Django's test client posts ``grant_type=client_credentials`` to ``/oauth/token`` of
s2s_auth's test project (a fresh SQLite database, Django's database cache as the
shared store, the audit middleware on), one client authentication method at a time.
No network: the figures are the server's CPU per token (DRF, parsing, the lock-out
and rate-limit counters, the secret check, ES256, the audit record), the numbers to
compare before and after a change of the hot path. Run it with ``TMPDIR=/dev/shm``
so the database cache's writes do not wait for a disk::

    python -m bench.token_profile                        # µs per token, each method
    python -m bench.token_profile --profile client_secret_basic --top 30
    python -m bench.token_profile --queries              # SQL statements per token

``--callgrind`` counts instructions instead (deterministic on a shared machine), as
``bench.profile`` does: each method's measured tokens land in one dump part (the
``summary:`` line of each non-empty ``cg.out.<pid>.<n>``, in method order, divided by
``-n``). The rate window's clock then moves one second per token, so that the window
holds its 60 buckets (as at any rate above a token a second) whatever valgrind's pace,
and the principal cache is refreshed hourly::

    TMPDIR=/dev/shm valgrind --tool=callgrind --collect-atstart=no \
        --toggle-collect=starmap_next --dump-before=zlib_crc32 \
        --callgrind-out-file=cg.out.%p \
        python -m bench.token_profile --callgrind -n 200 --repeat 1
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import itertools
import json
import os
import pstats
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
ISSUER = "https://issuer.test"
FORM = "application/x-www-form-urlencoded"
CLIENT = "caller"


def _setup(workdir: Path, *, slow: bool = False):
    """Database, CA, signing key directory, the client; its secret and certificate.
    ``slow`` (under valgrind): the principal cache refreshed hourly, not every second."""
    from django.core.management import call_command
    from django.test.utils import override_settings

    from s2s_auth.core.ca import CertificateAuthority
    from s2s_auth.credentials import principals

    ca = CertificateAuthority(workdir / "pki", "fleamarket.local")
    ca.init()
    issued = ca.issue(CLIENT)
    overrides = override_settings(
        ROOT_URLCONF="tests.s2s_auth.urls_issuer",
        S2S_AUTH={
            "SERVICE_NAME": "users",
            "TRUST_DOMAIN": "fleamarket.local",
            "PKI_DIR": str(ca.directory),
            "SIGNING_KEYS_DIR": str(workdir / "keys"),
            "ISSUER": ISSUER,
            # The bench's clients ask for thousands of tokens a minute.
            "TOKEN_RATE_LIMIT_PER_MINUTE": 10**6,
            **({"PRINCIPAL_CACHE_SECONDS": 3600} if slow else {}),
        },
    )
    overrides.enable()
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    principals.ensure_principal(CLIENT, ["users:read"])
    secret = principals.create_client_secret(CLIENT)
    return issued, secret


def _requests(issued, secret: str, n: int) -> dict[str, list[dict]]:
    """``method -> test-client kwargs``, ``n`` each (assertions are single-use)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from s2s_auth.core.jose import new_jti, sign

    grant = {"grant_type": "client_credentials", "scope": "users:read"}
    basic = base64.b64encode(f"{CLIENT}:{secret}".encode()).decode("ascii")
    key = load_pem_private_key(issued.key_path.read_bytes(), None)
    x5c = [base64.b64encode(_der(issued.cert_path)).decode("ascii")]

    def assertion() -> str:
        now = int(time.time())
        claims = {
            "iss": CLIENT,
            "sub": CLIENT,
            "aud": f"{ISSUER}/oauth/token",
            "iat": now,
            "exp": now + 300,
            "jti": new_jti(),
        }
        return sign(claims, key, typ="client-authentication+jwt", headers={"x5c": x5c})

    def form(data: dict) -> dict:
        return {"data": urlencode(data), "content_type": FORM}

    return {
        "client_secret_basic": [{**form(grant), "HTTP_AUTHORIZATION": f"Basic {basic}"}] * n,
        "client_secret_post": [form({**grant, "client_id": CLIENT, "client_secret": secret})] * n,
        "private_key_jwt": [
            form(
                {
                    **grant,
                    "client_assertion_type": (
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                    ),
                    "client_assertion": assertion(),
                }
            )
            for _ in range(n)
        ],
    }


def _der(cert_path: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(Encoding.DER)


def _run(client, calls: list[dict], *, callgrind: bool = False) -> tuple[float, float]:
    """(wall, CPU) seconds for all ``calls``; every one must be a 200
    (``callgrind``: see :func:`bench.profile.timed`)."""
    from bench.profile import timed

    def one(extra):
        response = client.post("/oauth/token", **extra)
        if response.status_code != 200:
            raise SystemExit(f"{response.status_code}: {response.content[:300]!r}")

    return timed(one, calls, callgrind=callgrind)


def _steady_window_clock() -> None:
    """The token rate window's clock moves one second per reading (one per token): the
    window holds 60 buckets, as at any real rate above a token a second."""
    from s2s_auth.issuer.throttling import TokenRateThrottle

    clock = itertools.count(int(time.time()) - 120)
    TokenRateThrottle.timer = staticmethod(lambda: float(next(clock)))


def _queries(client, calls: list[dict]) -> list[str]:
    """The SQL statements of one token request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        _run(client, calls[:1])
    return [query["sql"] for query in captured.captured_queries]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="tokens per method and round")
    parser.add_argument("--method", action="append", choices=METHODS)
    parser.add_argument("--profile", choices=METHODS, help="print this one's cProfile")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best is kept")
    parser.add_argument("--top", type=int, default=25, help="cProfile rows")
    parser.add_argument("--save", metavar="FILE", help="write the cProfile stats to FILE")
    parser.add_argument("--queries", action="store_true", help="print the SQL of one token")
    parser.add_argument("--json", action="store_true", help="one JSON line")
    parser.add_argument(
        "--callgrind", action="store_true", help="mark each method for callgrind (see above)"
    )
    options = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.s2s_auth.settings")
    os.environ.pop("DATABASE_URL", None)  # the test project's own SQLite file
    os.environ.pop("CACHE_URL", None)  # Django's database cache, as the bench servers
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    import logging

    logging.getLogger("s2s_auth").setLevel(logging.WARNING)
    issued, secret = _setup(Path(settings.BASE_DIR), slow=options.callgrind)
    if options.callgrind:
        _steady_window_clock()
    client = Client()
    chosen = options.method or list(METHODS)
    if options.profile and options.profile not in chosen:
        chosen.append(options.profile)
    calls = _requests(issued, secret, options.n * options.repeat + 51)
    results = {}
    for name in chosen:
        _run(client, calls[name][:50])  # warm: imports, keys, caches
        if options.queries:
            sql = _queries(client, calls[name][50:51])
            print(f"{name}: {len(sql)} SQL statements per token", file=sys.stderr)
            for statement in sql:
                print(f"    {statement[:160]}", file=sys.stderr)
        profiler = cProfile.Profile() if name == options.profile else None
        rounds = []
        with profiler or contextlib.nullcontext():
            for r in range(options.repeat):
                start = 51 + r * options.n
                batch = calls[name][start : start + options.n]
                rounds.append(_run(client, batch, callgrind=options.callgrind))
        wall, cpu = min(rounds, key=lambda pair: pair[1])  # the least disturbed round
        results[name] = {
            "wall_us": round(wall / options.n * 1e6, 1),
            "cpu_us": round(cpu / options.n * 1e6, 1),
        }
        if profiler is not None:
            if options.save:
                profiler.dump_stats(options.save)
            stats = pstats.Stats(profiler, stream=sys.stderr)
            stats.sort_stats("cumulative").print_stats(options.top)
            stats.sort_stats("tottime").print_stats(options.top)
    if options.json:
        print(json.dumps({"us_per_token": results, "n": options.n}))
    else:
        print(f"{'method':22} {'wall µs':>9} {'CPU µs':>9}  per token")
        for name, us in results.items():
            print(f"{name:22} {us['wall_us']:9.1f} {us['cpu_us']:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
