"""The hashed form of a row: what a third party re-implements from the export help."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest

from s2s_auth.audit import canonical, compute_hash, credential_hash
from s2s_auth.audit.canonical import GENESIS, HASH_VERSION, HASHED_FIELDS, iso_time
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


def reference_canonical(row: dict) -> bytes:
    """The canonical form as specified (and as it was computed before it was written
    out field by field): one ``json.dumps`` of the hashed fields plus the version."""
    data = {name: row[name] for name in HASHED_FIELDS}
    if isinstance(data["time"], dt.datetime):
        data["time"] = iso_time(data["time"])
    data["seq"] = int(data["seq"])
    data["v"] = HASH_VERSION
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


ODD_TEXT = [
    "",
    "plain",
    'quote " backslash \\ slash / tab \t newline \n return \r',
    "controls \x01\x1f\x7f\x80\x9f and \ufffd",
    "unicode é ß 東京 \u2028 \u2029 emoji 😀",
    "looks like an escape: \\u0000 \\n",
    "-----BEGIN CERTIFICATE-----\nMIIB" + "A" * 300 + "\n-----END CERTIFICATE-----\n",
]
ODD_CLAIMS = [
    {},
    {"b": 2, "a": "é"},
    {"z": [1, 2.5, True, False, None, "x"], "a": {"y": {"c": -1, "b": 10**30}}},
    {"scope": "users:read ads:write", "aud": ["a", "b"], "iat": 1_700_000_000, "f": 0.1},
    {"nested": {"é": "東京", "ctl": "\x1f", "quote": '"', "bs": "\\"}},
    {"signature_base": '"@method": GET\n"@signature-params": ();created=1'},
]
ODD_TIMES = [
    dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
    dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),  # no microseconds
    dt.datetime(2026, 1, 2, 3, 4, 5, 999999),  # naive: UTC
    dt.datetime(2026, 6, 1, 23, 59, 59, 1, tzinfo=dt.timezone(dt.timedelta(hours=-7))),
    "2026-01-02T03:04:05.000006+00:00",  # as exported: a string, hashed as it is
]


def odd_rows():
    """Records with every kind of value the hashed fields can hold."""
    for i, text in enumerate(ODD_TEXT):
        for j, claims in enumerate(ODD_CLAIMS):
            fields = {name: f"{text}{name}" if (i + j) % 2 else text for name in HASHED_FIELDS}
            fields.update(
                seq=[1, 2, 10**12, "7", True][(i + j) % 5],
                time=ODD_TIMES[(i * 3 + j) % len(ODD_TIMES)],
                claims=claims,
            )
            yield a_row(**fields)
    # Not what a stored row holds, but what canonical() accepts: the same bytes too.
    yield a_row(detail=True, reason=None, path=5, method=1.5, credential=["x", {"b": 1, "a": 2}])


def test_canonical_is_byte_for_byte_the_specified_json_dumps():
    rows = list(odd_rows())
    assert len(rows) == len(ODD_TEXT) * len(ODD_CLAIMS) + 1
    for row in rows:
        assert canonical(row) == reference_canonical(row), row
        assert compute_hash(row) == hashlib.sha256(reference_canonical(row)).hexdigest()


def test_the_last_certificate_quoted_is_reused_only_for_that_very_object():
    pem = ODD_TEXT[-1] + "é \u2028"
    rows = [
        a_row(certificate=pem),
        a_row(certificate=pem, detail="another record, the same chain object"),
        a_row(certificate=pem.replace("A", "B")),
        a_row(certificate="".join(list(pem))),  # equal, another object
        a_row(certificate=""),
    ]
    mutable = ["x"]
    for row in [*rows, a_row(certificate=mutable)]:
        assert canonical(row) == reference_canonical(row), row
    mutable.append({"b": 1})  # not a str: never remembered
    assert canonical(a_row(certificate=mutable)) == reference_canonical(a_row(certificate=mutable))


def test_the_version_sorts_after_every_hashed_field():
    assert max(HASHED_FIELDS) < "v"
    assert canonical(a_row()).endswith(b',"v":1}')


@pytest.mark.parametrize(
    "change",
    [
        {"claims": {"bad": float("nan")}},  # not JSON: refused both ways
        {"claims": {"when": dt.datetime(2026, 1, 1)}},
        {"seq": "not a number"},
    ],
)
def test_what_the_specified_form_refuses_is_refused_too(change):
    row = a_row(**change)
    with pytest.raises((ValueError, TypeError)) as reference:
        reference_canonical(row)
    with pytest.raises(type(reference.value)):
        canonical(row)


@pytest.mark.django_db
def test_stored_records_hash_the_same_both_ways(rf):
    """Rows as they come back from the database (row_dict) hash identically too."""
    from s2s_auth.audit import Decision, events, row_dict

    claims = {"scope": "a b", "é": ["東京", 1, 2.5, None], "ctl": "\x00\x1f"}
    for outcome in ("accepted", "refused"):
        decision = Decision(mechanism="m", outcome=outcome, reason="r", claims=claims)
        events.record_decision(rf.get("/x/é?q=1", REMOTE_ADDR="::1"), decision)
    records = list(AuditRecord.objects.order_by("id"))
    assert len(records) == 2
    for record in records:
        row = row_dict(record)
        assert record.hash == compute_hash(row)
        assert canonical(row) == reference_canonical(row)
