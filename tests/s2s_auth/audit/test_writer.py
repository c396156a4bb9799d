"""The audit writer thread: which records it takes, batches that verify, no record lost
to a database error or a full queue, and what stays in the request's transaction."""

from __future__ import annotations

import logging
import threading

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory

from s2s_auth import audit
from s2s_auth.audit import Decision, events, writer
from s2s_auth.models import AuditRecord
from tests.s2s_auth.audit.helpers import TABLE, verify_command

factory = RequestFactory()
#: A credential that must never reach a log line.
SECRET = "secret-credential-never-logged"


@pytest.fixture
def audit_write(settings):
    """Set AUDIT_WRITE and its knobs for one test; the writer is shut down after it."""

    def configure(mode: str, **knobs) -> None:
        settings.S2S_AUTH = {**settings.S2S_AUTH, "AUDIT_WRITE": mode, **knobs}

    yield configure
    writer.shutdown()


def accepted(method: str = "GET", path: str = "/read", reason: str = "") -> None:
    request = factory.generic(method, path)
    events.record(request, Decision(mechanism="m", outcome="accepted", reason=reason))


def refused(path: str = "/read") -> None:
    decision = Decision(mechanism="m", outcome="refused", reason="bad_signature", credential=SECRET)
    events.record(factory.get(path), decision)


def test_group_commit_stores_the_record_before_it_returns(transactional_db, audit_write):
    audit_write("group_commit")
    accepted("GET")
    refused()
    accepted("POST", reason="in-request")
    rows = list(AuditRecord.objects.order_by("id"))
    assert [r.outcome for r in rows] == ["accepted", "refused", "accepted"]
    # Outside a transaction the POST's acceptance (a token issued, an operator's
    # command) is committed by the group commit too, before record() returned: the
    # three rows are one chain, and requests issuing tokens at once share commits.
    assert len({r.chain_id for r in rows}) == 1
    assert [r.seq for r in rows] == [1, 2, 3]
    with transaction.atomic():  # inside a transaction: written in it, on its own chain
        accepted("POST", reason="in-transaction")
        assert AuditRecord.objects.filter(reason="in-transaction").exists()
    assert AuditRecord.objects.get(reason="in-transaction").chain_id != rows[0].chain_id
    verify_command("--no-anchors")


def test_group_commit_from_many_threads_forms_one_verifiable_chain(transactional_db, audit_write):
    audit_write("group_commit", AUDIT_BATCH_SIZE=3)
    threads, per_thread = 6, 10
    # Only the group's leader touches the database, one at a time (SQLite's in-memory
    # test database fails concurrent statements at once: "table is locked").

    def requests(n: int) -> None:
        try:
            for i in range(per_thread):
                accepted("GET", f"/g/{n}/{i}")
        finally:
            connection.close()

    workers = [threading.Thread(target=requests, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    rows = list(AuditRecord.objects.order_by("seq"))
    assert len(rows) == threads * per_thread
    assert len({r.chain_id for r in rows}) == 1
    assert f"OK: {threads * per_thread} records in 1 chains" in verify_command("--no-anchors")


def test_a_group_commit_that_cannot_be_written_fails_the_request(
    transactional_db, audit_write, caplog
):
    audit_write("group_commit")
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_away")
    try:
        with pytest.raises(DatabaseError):
            refused("/lost")  # not dropped in silence: the request fails, as "sync"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {TABLE}_away RENAME TO {TABLE}")
    assert "not written together" in caplog.text
    assert SECRET not in caplog.text
    refused("/kept")  # the group writes on, on a new chain
    assert AuditRecord.objects.get().path == "/kept"
    verify_command("--no-anchors")


def test_background_rows_from_many_threads_form_one_verifiable_chain(transactional_db, audit_write):
    audit_write("background", AUDIT_FLUSH_INTERVAL=0.05, AUDIT_BATCH_SIZE=7)
    threads, per_thread = 5, 12

    def requests(n: int) -> None:
        for i in range(per_thread):
            if i % 3:
                accepted("GET", f"/t/{n}/{i}")
            else:
                refused(f"/t/{n}/{i}")

    workers = [threading.Thread(target=requests, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert audit.flush(timeout=30)
    rows = list(AuditRecord.objects.order_by("seq"))
    assert len(rows) == threads * per_thread
    assert len({r.chain_id for r in rows}) == 1
    assert [r.seq for r in rows] == list(range(1, threads * per_thread + 1))
    assert f"OK: {threads * per_thread} records in 1 chains" in verify_command("--no-anchors")


def test_a_database_error_keeps_the_rows_until_they_can_be_written(
    transactional_db, audit_write, caplog
):
    audit_write("background", AUDIT_FLUSH_INTERVAL=0.01)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_away")
    try:
        with caplog.at_level(logging.ERROR, logger="s2s_auth"):
            refused("/1")
            accepted("GET", "/2")
            assert not audit.flush(timeout=0.5)  # the table is gone: nothing written
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {TABLE}_away RENAME TO {TABLE}")
    assert audit.flush(timeout=30)  # the writer retried, and kept them in order
    assert list(AuditRecord.objects.order_by("seq").values_list("path", flat=True)) == [
        "/1",
        "/2",
    ]
    assert "records not written" in caplog.text
    assert SECRET not in caplog.text
    verify_command("--no-anchors")


def test_a_full_queue_makes_the_request_write_its_own_row(transactional_db, audit_write):
    # A flush interval no test waits for: only the queue's size decides here.
    audit_write(
        "background",
        AUDIT_FLUSH_INTERVAL=3600,
        AUDIT_BATCH_SIZE=1000,
        AUDIT_QUEUE_SIZE=2,
        AUDIT_QUEUE_TIMEOUT=0.01,
    )
    for i in range(5):
        accepted("GET", f"/{i}")
    assert AuditRecord.objects.count() == 3  # written in the request: no room
    assert audit.flush(timeout=30)
    assert AuditRecord.objects.count() == 5
    assert AuditRecord.objects.values("chain_id").distinct().count() == 2
    verify_command("--no-anchors")


def test_shutdown_writes_what_is_queued(transactional_db, audit_write):
    audit_write("background", AUDIT_FLUSH_INTERVAL=3600, AUDIT_BATCH_SIZE=1000)
    for i in range(4):
        refused(f"/{i}")
    writer.shutdown(timeout=30)
    assert AuditRecord.objects.count() == 4
    accepted("GET")  # a record after shutdown starts a new writer
    assert audit.flush(timeout=30)
    assert AuditRecord.objects.count() == 5
    verify_command("--no-anchors")


def test_state_changing_and_in_transaction_records_stay_in_the_transaction(
    transactional_db, audit_write
):
    audit_write("background", AUDIT_FLUSH_INTERVAL=3600, AUDIT_BATCH_SIZE=1000)
    accepted("POST", reason="post")
    assert AuditRecord.objects.count() == 1  # written at once, not queued
    with transaction.atomic():
        accepted("GET", reason="rolled-back")  # joins the open transaction...
        transaction.set_rollback(True)
    assert audit.flush(timeout=30)
    assert list(AuditRecord.objects.values_list("reason", flat=True)) == ["post"]


def test_sync_mode_writes_every_record_in_the_request(transactional_db, audit_write):
    audit_write("sync")
    accepted("GET")
    refused()
    rows = list(AuditRecord.objects.order_by("id"))
    assert [r.seq for r in rows] == [1, 2]
    assert rows[0].chain_id == rows[1].chain_id


def test_reset_starts_a_new_chain_in_the_writer_too(transactional_db, audit_write):
    audit_write("group_commit")
    accepted("GET")
    AuditRecord.objects.all().delete()
    audit.reset_writer_chains()
    accepted("GET")
    assert AuditRecord.objects.get().seq == 1
    verify_command("--no-anchors")


def test_a_forked_child_has_none_of_its_parents_queue(transactional_db, audit_write):
    """A worker forked from a master that already queued rows (gunicorn --preload)
    starts with no writer, no group and no queue: those rows are the parent's."""
    import os

    audit_write("background", AUDIT_FLUSH_INTERVAL=3600, AUDIT_BATCH_SIZE=1000)
    refused("/parent")
    assert writer._writers
    pid = os.fork()
    if pid == 0:  # the child: no database, no pytest; its verdict is its exit status
        os._exit(0 if not writer._writers and not writer._groups else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert audit.flush(timeout=30)
    assert list(AuditRecord.objects.values_list("path", flat=True)) == ["/parent"]
