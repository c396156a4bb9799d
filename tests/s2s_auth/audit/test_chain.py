"""Per-writer chains: rolled-back rows leave no gap, concurrent writers stay verifiable."""

from __future__ import annotations

import contextlib
import threading

from django.db import connection, transaction
from django.test import RequestFactory

from s2s_auth.audit import Decision, events
from s2s_auth.models import AuditRecord
from tests.s2s_auth.audit.helpers import (
    mint,
    verify_command,
)


def test_nested_savepoints_keep_the_chain_gapless(transactional_db, settings):
    # "sync": every record is written in the request's thread and transaction, on this
    # thread's chain (in "group_commit" the last one, outside a transaction, would go to
    # the group's chain).
    settings.S2S_AUTH = {**settings.S2S_AUTH, "AUDIT_WRITE": "sync"}
    request = RequestFactory().post("/x")

    def write(reason):
        events.record(request, Decision(mechanism="m", outcome="accepted", reason=reason))

    with transaction.atomic():
        write("a")
        try:
            with transaction.atomic():
                write("rolled-back")
                raise RuntimeError
        except RuntimeError:
            pass
        write("b")
    with transaction.atomic():
        write("lost")
        transaction.set_rollback(True)
    write("c")
    rows = list(AuditRecord.objects.order_by("seq").values_list("reason", "seq"))
    assert rows == [("a", 1), ("b", 2), ("c", 3)]
    verify_command("--no-anchors")


# ------------------------------------------------------------------ concurrency


def test_concurrent_writers_keep_every_chain_verifiable(transactional_db, caller, ca, settings):
    # One chain per writing thread: "sync" (the group commit would share one chain).
    settings.S2S_AUTH = {**settings.S2S_AUTH, "AUDIT_WRITE": "sync"}
    threads, per_thread = 8, 20
    errors: list[BaseException] = []
    start = threading.Barrier(threads)
    factory = RequestFactory()
    # SQLite's in-memory test database (shared cache) fails concurrent writers at once
    # ("table is locked") instead of waiting: serialise its statements there. The rows
    # of the threads still interleave; PostgreSQL runs them truly concurrently.
    serial = threading.Lock() if connection.vendor == "sqlite" else contextlib.nullcontext()

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                request = factory.post(f"/t/{n}/{i}", data=b"{}", content_type="application/json")
                token = mint(caller)
                if i % 5 == 4:  # a rolled-back row in the middle must not leave a gap
                    try:
                        with serial, transaction.atomic():
                            lost = Decision(mechanism="m", outcome="accepted", reason="lost")
                            events.record(request, lost)
                            raise RuntimeError("rollback")
                    except RuntimeError:
                        pass
                with serial:
                    events.record(
                        request,
                        Decision(
                            mechanism="test_jwt",
                            outcome="accepted",
                            principal=caller.spiffe_id,
                            credential=token,
                            certificate_pem=caller.chain_pem,
                        ),
                    )
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors, errors
    assert AuditRecord.objects.count() == threads * per_thread
    assert AuditRecord.objects.values("chain_id").distinct().count() == threads
    assert not AuditRecord.objects.filter(reason="lost").exists()
    output = verify_command("--anchors", str(ca.ca_path))
    assert f"OK: {threads * per_thread} records in {threads} chains" in output
