"""A writer process for the group commit's SQLite file test (test_batch_connection.py).

    python -m tests.s2s_auth.audit.group_writers DATABASE_FILE migrate
    python -m tests.s2s_auth.audit.group_writers DATABASE_FILE write ROWS THREADS
    python -m tests.s2s_auth.audit.group_writers DATABASE_FILE verify

The test project's settings on a SQLite file in WAL mode, as the deployment opens it
(``fleamarket.settings.database``). ``write`` prints ``ready``, waits for a line on
stdin, then ``THREADS`` threads each record ``ROWS`` refusals through the group commit,
and the process prints what its batch connection did as JSON.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading

import django
from django.conf import settings


def configure(path: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.s2s_auth.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    os.environ.pop("CACHE_URL", None)
    settings.DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    django.setup()
    settings.S2S_AUTH = {**settings.S2S_AUTH, "AUDIT_WRITE": "group_commit"}


def write(rows: int, threads: int) -> None:
    from django.db import connections
    from django.test import RequestFactory

    from s2s_auth.audit import Decision, events, writer

    factory = RequestFactory()

    def refusals(n: int) -> None:
        for i in range(rows):
            decision = Decision(mechanism="m", outcome="refused", reason="bad_signature")
            events.record(factory.get(f"/p{os.getpid()}/t{n}/{i}"), decision)
        connections["default"].close()

    workers = [threading.Thread(target=refusals, args=(n,)) for n in range(threads)]
    print("ready", flush=True)
    sys.stdin.readline()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    group = writer._group("default")
    batch = group.connection
    with batch.get().cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        autocheckpoint = cursor.fetchone()[0]
    lock = f"{batch.sqlite_file}-s2s.lock"
    checkpointer = batch.checkpointer
    if checkpointer is not None:
        checkpointer.idle.wait(10)
    report = {
        "autocheckpoint": autocheckpoint,
        "lock_mode": oct(os.stat(lock).st_mode & 0o777),
        "checkpoints": checkpointer.done if checkpointer else 0,
    }
    print(json.dumps(report), flush=True)


def main(path: str, command: str, *args: str) -> None:
    configure(path)
    from django.core.management import call_command

    if command == "migrate":
        call_command("migrate", verbosity=0)
    elif command == "write":
        write(int(args[0]), int(args[1]))
    elif command == "verify":
        out = io.StringIO()
        call_command("s2s_audit", "verify", "--no-anchors", stdout=out)
        print(out.getvalue().strip(), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
