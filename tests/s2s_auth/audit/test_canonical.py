"""The hashed form of a row: what a third party re-implements from the export help."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest

from s2s_auth.audit import canonical, compute_hash, credential_hash
from s2s_auth.audit.canonical import GENESIS, HASHED_FIELDS
from s2s_auth.models import AuditRecord


def a_row(**changes) -> dict:
    row = {name: "" for name in HASHED_FIELDS}
    row.update(
        chain_id="c" * 32,
        seq=1,
        prev_hash=GENESIS,
        time=dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
        outcome="accepted",
        claims={"b": 2, "a": "é"},
    )
    row.update(changes)
    return row


def test_canonical_is_sorted_compact_utf8_json_with_a_version():
    data = canonical(a_row())
    assert data.startswith(b'{"body_digest":"","certificate":"","chain_id":"cccc')
    assert b'"claims":{"a":"\xc3\xa9","b":2}' in data
    assert b'"time":"2026-01-02T03:04:05.000006+00:00"' in data
    assert data.endswith(b',"v":1}')
    assert set(json.loads(data)) == {*HASHED_FIELDS, "v"}
    assert compute_hash(a_row()) == hashlib.sha256(data).hexdigest()


def test_time_is_hashed_in_utc_and_a_naive_time_is_utc():
    utc = a_row()["time"]
    elsewhere = utc.astimezone(dt.timezone(dt.timedelta(hours=5)))
    assert compute_hash(a_row(time=elsewhere)) == compute_hash(a_row())
    assert compute_hash(a_row(time=utc.replace(tzinfo=None))) == compute_hash(a_row())


@pytest.mark.parametrize("name", [n for n in HASHED_FIELDS if n not in ("seq", "time")])
def test_every_hashed_field_changes_the_hash(name):
    assert compute_hash(a_row(**{name: "x"})) != compute_hash(a_row())


def test_every_stored_column_but_the_surrogate_id_and_the_hash_is_hashed():
    columns = {field.name for field in AuditRecord._meta.concrete_fields}
    assert columns - {"id", "hash"} == set(HASHED_FIELDS)


def test_credential_hash_is_sha256_hex_of_the_token():
    assert credential_hash("a.b.c") == credential_hash(b"a.b.c")
    assert credential_hash("a.b.c") == hashlib.sha256(b"a.b.c").hexdigest()
