"""The audit INSERT without a model instance: it stores what Model.save() stores, one
statement for a lone row, all or none for a batch, and a failure marks the block."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from s2s_auth.audit import GENESIS, Decision, build_row, compute_hash, row_dict
from s2s_auth.audit.chain import _Chain, write_batch
from s2s_auth.audit.insert import insert_rows
from s2s_auth.models import AuditRecord
from tests.s2s_auth.audit.helpers import TABLE, verify_command


def odd_row(rf, n: int = 0, **changes) -> dict:
    """A complete row (chain fields included) with values that need adapting."""
    decision = Decision(
        mechanism="mtls",
        outcome="refused" if n % 2 else "accepted",
        reason="bad",
        detail="détail\x00 with a NUL",
        principal="spiffe://fleamarket.local/service/é",
        claims={"z": [1, 2.5, None, True], "a": {"東京": "\x1f"}, "n": n},
        credential_hash="ab" * 32,
    )
    row = build_row(rf.get(f"/x/é/{n}", REMOTE_ADDR="2001:db8::1"), decision)
    row.update({"chain_id": "c" * 32, "seq": n + 1, "prev_hash": "0" * 64, **changes})
    row["hash"] = compute_hash(row)
    return row


def stored(record_id: int) -> tuple:
    """A row's columns as the database holds them (not as the ORM converts them)."""
    columns = [f.column for f in AuditRecord._meta.concrete_fields if not f.primary_key]
    with connection.cursor() as cursor:
        quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
        table = connection.ops.quote_name(TABLE)
        sql = f"SELECT {quoted} FROM {table} WHERE id = %s"  # noqa: S608 - names from _meta
        cursor.execute(sql, [record_id])
        return cursor.fetchone()


@pytest.mark.django_db
def test_a_row_is_stored_exactly_as_model_save_stores_it(rf):
    row = odd_row(rf)
    AuditRecord(**row).save(force_insert=True)
    by_orm = AuditRecord.objects.get()
    other = {**row, "chain_id": "d" * 32}
    other["hash"] = compute_hash(other)
    insert_rows([other], connection.alias)
    by_insert = AuditRecord.objects.exclude(id=by_orm.id).get()
    orm_columns, insert_columns = stored(by_orm.id), stored(by_insert.id)
    differing = [
        f.name
        for f, a, b in zip(
            [f for f in AuditRecord._meta.concrete_fields if not f.primary_key],
            orm_columns,
            insert_columns,
            strict=True,
        )
        if a != b
    ]
    assert sorted(differing) == ["chain_id", "hash"]
    for name in ("time", "claims", "detail", "principal", "seq", "path", "client_address"):
        assert getattr(by_insert, name) == row[name]
    assert by_insert.hash == compute_hash(row_dict(by_insert)) == other["hash"]


@pytest.mark.django_db(transaction=True)
def test_a_lone_row_is_one_insert_and_nothing_else(rf):
    chain = _Chain()
    row = build_row(rf.get("/alone"), Decision(mechanism="m", outcome="accepted"))
    assert connection.get_autocommit()
    with CaptureQueriesContext(connection) as queries:
        write_batch([row], connection.alias, chain)
    assert len(queries) == 1, [q["sql"] for q in queries]
    sql = queries[0]["sql"].upper()
    assert sql.startswith("INSERT INTO") and "RETURNING" not in sql
    assert chain.seq == 1
    assert AuditRecord.objects.get().hash == chain.hash


@pytest.mark.django_db(transaction=True)
def test_a_batch_beyond_one_statement_is_stored_whole_and_verifies(rf):
    chain = _Chain()
    rows = [
        build_row(rf.get(f"/b/{n}"), Decision(mechanism="m", outcome="refused", reason="r"))
        for n in range(120)
    ]
    write_batch(rows, connection.alias, chain)
    stored_rows = list(AuditRecord.objects.order_by("seq"))
    assert [r.seq for r in stored_rows] == list(range(1, 121))
    assert [r.path for r in stored_rows] == [f"/b/{n}" for n in range(120)]
    assert stored_rows[-1].hash == chain.hash
    verify_command("--no-anchors")


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_fails_anywhere_stores_nothing(rf):
    """Beyond SQLite's 999 values a batch takes several statements: still all or none."""
    rows = [odd_row(rf, n) for n in range(120)]
    rows[-1] = {**rows[-1], "seq": 1}  # the unique (chain_id, seq) refuses the last
    with pytest.raises(IntegrityError):
        insert_rows(rows, connection.alias)
    assert AuditRecord.objects.count() == 0
    chain = _Chain()
    insert_rows([odd_row(rf, 1, chain_id=chain.chain_id)], connection.alias)  # its seq 2
    with pytest.raises(IntegrityError):
        write_batch([odd_row(rf), odd_row(rf)], connection.alias, chain)
    assert AuditRecord.objects.count() == 1  # the first of the batch is not kept either
    assert (chain.seq, chain.hash) == (0, GENESIS)  # and the head stays where it was


@pytest.mark.django_db(transaction=True)
def test_a_failed_insert_in_an_open_block_marks_it_for_rollback(rf):
    """As Model.save() does: on PostgreSQL the transaction is broken anyway."""
    row = odd_row(rf)
    insert_rows([row], connection.alias)
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            insert_rows([row], connection.alias)  # the same hash and (chain_id, seq)
        assert connection.needs_rollback
    assert AuditRecord.objects.count() == 1


def _by_fields(rows: list[dict], fields) -> list:
    return [f.get_db_prep_save(row[f.attname], connection) for row in rows for f in fields]


def _comparable(params: list) -> list:
    """PostgreSQL's adapters (Jsonb, Int8) compare by identity: compare what they hold."""
    return [(type(p), getattr(p, "obj", p)) for p in params]


@pytest.mark.django_db
def test_the_parameters_are_what_get_db_prep_save_gives(rf):
    from s2s_auth.audit.insert import _statement

    statement = _statement(connection)
    usual, odd = odd_row(rf), odd_row(rf, 3)
    # values of other types than build_row's go through the field itself
    odd.update(time=odd["time"].replace(tzinfo=None), seq=True, claims=[1], path=None)
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        expected = _by_fields([usual, odd], statement.fields)
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        params = statement.params([usual, odd], connection)
    assert _comparable(params) == _comparable(expected)


@pytest.mark.django_db(transaction=True)
def test_a_logged_cursor_and_a_plain_one_store_the_same(rf):
    first = odd_row(rf, 1)
    second = {**first, "chain_id": "d" * 32}
    second["hash"] = compute_hash(second)
    insert_rows([first], connection.alias)
    with CaptureQueriesContext(connection) as queries:  # Django's own execute
        insert_rows([second], connection.alias)
    assert len(queries) == 1
    one, two = (AuditRecord.objects.get(hash=r["hash"]) for r in (first, second))
    names = [f.name for f in AuditRecord._meta.concrete_fields if not f.primary_key]
    chained = {"chain_id", "hash"}
    assert [v for n, v in zip(names, stored(one.id), strict=True) if n not in chained] == [
        v for n, v in zip(names, stored(two.id), strict=True) if n not in chained
    ]
    assert compute_hash(row_dict(one)) == one.hash and compute_hash(row_dict(two)) == two.hash
