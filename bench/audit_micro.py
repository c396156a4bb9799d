"""In-process micro-benchmark of the audit write: µs per authenticated GET.

A fresh UserService (SQLite in WAL mode in a temporary directory, or ``DATABASE_URL``),
a client certificate for ``ads`` and Django's test client calling
``/api/v1/service-ping`` over "mTLS" (``SSL_CLIENT_CERT`` in the WSGI environ) in a
loop from ``THREADS`` threads; nothing runs in a test transaction, so the audit rows
are written the way a server writes them::

    python -m bench.audit_micro [seconds] [threads]

Prints one JSON line per ``S2S_AUTH["AUDIT_WRITE"]`` mode (and ``AUDIT_ENABLED``
off): requests, µs of wall time per request, µs of process CPU per request.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path


def main(seconds: float = 3.0, threads: int = 1) -> int:
    var = Path(tempfile.mkdtemp(prefix="audit_micro_"))
    os.environ.setdefault("VAR_DIR", str(var))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "users.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client, override_settings

    from fleamarket.deployment import ensure_dev_pki
    from s2s_auth import audit
    from s2s_auth.credentials.principals import ensure_principal
    from s2s_auth.models import AuditRecord

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    ca = ensure_dev_pki(var / "pki")
    settings.S2S_AUTH = {**settings.S2S_AUTH, "PKI_DIR": str(ca.directory)}
    ensure_principal("ads", ["users:read"])
    pem = ca.paths("ads")[0].read_text()
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
    sys.exit(main(*(float(a) if i == 0 else int(a) for i, a in enumerate(sys.argv[1:]))))
