"""In-process micro-benchmark of the audit write: µs per authenticated GET.

A fresh UserService (SQLite in WAL mode in a temporary directory, or ``DATABASE_URL``),
a client certificate for ``ads`` and Django's test client calling
``/api/v1/service-ping`` over "mTLS" (``SSL_CLIENT_CERT`` in the WSGI environ) in a
loop from ``THREADS`` threads; nothing runs in a test transaction, so the audit rows
are written the way a server writes them::

    python -m bench.audit_micro [seconds] [threads]
    python -m bench.audit_micro --parts

Prints one JSON line per ``S2S_AUTH["AUDIT_WRITE"]`` mode (and ``AUDIT_ENABLED``
off): requests, µs of wall time per request, µs of process CPU per request.
``--parts``: µs of process CPU (best of seven rounds) of each step of one record,
for an mTLS and an access-token decision: building the row, its canonical form and
hash, the INSERT parameters, one row written alone, and a row of a 20-row batch.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path


def _setup() -> str:
    """A fresh UserService database and PKI; the PEM of ``ads``'s certificate."""
    var = Path(tempfile.mkdtemp(prefix="audit_micro_"))
    os.environ.setdefault("VAR_DIR", str(var))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "users.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from fleamarket.deployment import ensure_dev_pki
    from s2s_auth.credentials.principals import ensure_principal

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    ca = ensure_dev_pki(var / "pki")
    settings.S2S_AUTH = {**settings.S2S_AUTH, "PKI_DIR": str(ca.directory)}
    ensure_principal("ads", ["users:read"])
    return ca.paths("ads")[0].read_text()


def _best_us(call, n: int, per: int = 1) -> float:
    """µs of process CPU per call (per ``per`` rows), the best of seven rounds."""
    best = float("inf")
    for _ in range(7):
        start = time.process_time()
        for _ in range(n):
            call()
        best = min(best, (time.process_time() - start) / n / per)
    return round(best * 1e6, 1)


def parts() -> int:
    """The steps of one record, measured one by one (``--parts``)."""
    pem = _setup()
    from django.db import connections
    from django.test import RequestFactory

    from s2s_auth.audit import Decision, build_row, compute_hash
    from s2s_auth.audit.chain import _Chain, audit_alias, write_batch
    from s2s_auth.audit.insert import _statement

    alias = audit_alias()
    connection = connections[alias]
    statement = _statement(connection)
    request = RequestFactory().get("/api/v1/service-ping", REMOTE_ADDR="127.0.0.1")
    principal = "spiffe://fleamarket.local/service/ads"
    claims = {"iss": "https://users", "sub": principal, "scope": "users:read", "exp": 1}
    decisions = {
        "mtls": Decision(
            mechanism="mtls", outcome="accepted", principal=principal, certificate_pem=pem
        ),
        "access_token": Decision(
            mechanism="access_token",
            outcome="accepted",
            principal=principal,
            credential_hash="0" * 64,
            claims={**claims, "jti": "j", "aud": "spiffe://fleamarket.local/service/users"},
        ),
    }
    for name, decision in decisions.items():
        row = build_row(request, decision)
        chained = {**row, "chain_id": "0" * 32, "seq": 1, "prev_hash": "0" * 64}
        chained["hash"] = compute_hash(chained)
        alone, batched = _Chain(), _Chain()
        steps = {
            "build_row": _best_us(lambda d=decision: build_row(request, d), 2000),
            "compute_hash": _best_us(lambda c=chained: compute_hash(c), 2000),
            "insert_params": _best_us(lambda c=chained: statement.params([c], connection), 2000),
            "write_alone": _best_us(lambda r=row, c=alone: write_batch([r], alias, c), 300),
            "write_in_batch_of_20": _best_us(
                lambda r=row, c=batched: write_batch([r] * 20, alias, c), 30, per=20
            ),
        }
        print(json.dumps({"decision": name, "cpu_us": steps}), flush=True)
    return 0


def main(seconds: float = 3.0, threads: int = 1) -> int:
    pem = _setup()
    from django.conf import settings
    from django.db import connections
    from django.test import Client, override_settings

    from s2s_auth import audit
    from s2s_auth.models import AuditRecord

    url = "/api/v1/service-ping"
    modes = os.environ.get("AUDIT_MODES", "warmup,off,sync,group_commit,background").split(",")
    for mode in modes:
        conf = {**settings.S2S_AUTH, "AUDIT_ENABLED": mode != "off"}
        if mode not in ("off", "sync-old", "warmup"):
            conf["AUDIT_WRITE"] = mode
        override = override_settings(S2S_AUTH=conf)
        override.enable()
        before = AuditRecord.objects.count()
        counts = [0] * threads
        stop = time.perf_counter() + seconds

        def loop(n: int, stop: float = stop, counts: list = counts) -> None:
            client = Client(SSL_CLIENT_CERT=pem, HTTP_HOST="127.0.0.1", secure=True)
            first = client.get(url)
            assert first.status_code == 200, (first.status_code, first.content[:300])
            while time.perf_counter() < stop:
                client.get(url)
                counts[n] += 1
            connections.close_all()

        cpu0, wall0 = time.process_time(), time.perf_counter()
        workers = [threading.Thread(target=loop, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        if hasattr(audit, "flush"):
            audit.flush()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        total = sum(counts)
        rows = AuditRecord.objects.count() - before
        override.disable()
        print(
            json.dumps(
                {
                    "mode": mode,
                    "threads": threads,
                    "requests": total,
                    "rows": rows,
                    "wall_us": round(wall / total * 1e6, 1),
                    "cpu_us": round(cpu / total * 1e6, 1),
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--parts"]:
        sys.exit(parts())
    sys.exit(main(*(float(a) if i == 0 else int(a) for i, a in enumerate(sys.argv[1:]))))
