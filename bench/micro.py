"""In-process micro-benchmark: access-token validations per second against the JWKS.

Run by the harness in UserService's environment (settings, the TLS server's issuer
URL, ``S2S_CACHE_VERIFIED_TOKENS`` on or off)::

    BENCH_TOKEN=... DJANGO_SETTINGS_MODULE=users.settings python -m bench.micro 2.0 0.3

``s2s_auth.mechanisms.access_token.validate_access_token`` is called in a loop on one
thread; the first call fetches the JWKS from the running issuer, the warm-up keeps it
out of the figures. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(duration: float, warmup: float) -> int:
    import django

    django.setup()
    from bench.stats import latency_figures
    from s2s_auth.conf import s2s_settings
    from s2s_auth.mechanisms.access_token import (
        AccessTokenAuthentication,
        validate_access_token,
    )

    raw = os.environ["BENCH_TOKEN"]
    audiences = AccessTokenAuthentication().audiences()
    validate_access_token(raw, kind="service", audiences=audiences)  # JWKS fetched here
    perf = time.perf_counter
    end_warmup = perf() + warmup
    while perf() < end_warmup:
        validate_access_token(raw, kind="service", audiences=audiences)
    latencies = []
    start = perf()
    end = start + duration
    now = start
    while now < end:
        t0 = perf()
        validate_access_token(raw, kind="service", audiences=audiences)
        now = perf()
        latencies.append(now - t0)
    elapsed = now - start
    print(
        json.dumps(
            {
                "requests": len(latencies),
                "errors": 0,
                "rps": len(latencies) / elapsed,
                **latency_figures(latencies),
                "cache": bool(s2s_settings().CACHE_VERIFIED_TOKENS),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]), float(sys.argv[2])))
