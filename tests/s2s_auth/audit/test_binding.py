"""A record's method, path and time must be what its credential signed.

The forger rewrites the newest record of a chain (nothing links to it yet) and
recomputes its hash: the credential still verifies, so only comparing the row with
the signed content catches it.
"""
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from s2s_auth import audit
from s2s_auth.audit.binding import Binding, _request_path, check_binding
from s2s_auth.models import AuditRecord
from tests.s2s_auth.audit.helpers import (
    TABLE,
    jwt_post,
    mint,
    signed_post,
    verify_command,
    verify_fails,
)


def _rewrite(record: AuditRecord, **changes) -> None:
    row = audit.row_dict(record)
    row.update(changes)
    new_hash = audit.compute_hash(row)
    columns = ", ".join(f"{name} = %s" for name in changes)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET {columns}, hash = %s WHERE id = %s",
            [*changes.values(), new_hash, record.id],
        )


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"method": "DELETE"}, "covers method POST"),
        ({"path": "/api/v1/transfer-everything"}, "covers path /audit-test/write"),
        (
            {"time": dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)},
            "the signature was created at",
        ),
        (
            {"time": dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)},
            "the signature was created at",
        ),
    ],
)
def test_an_rfc9421_record_must_match_the_signed_request(
    transactional_db, client, caller, changes, why
):
    assert signed_post(client, caller).status_code == 200
    record = AuditRecord.objects.get()
    verify_command("--no-anchors")
    _rewrite(record, **changes)
    message = verify_fails("--no-anchors")
    assert f"record {record.id} " in message and why in message, message


@pytest.mark.parametrize(
    "when",
    [dt.timedelta(hours=1), -dt.timedelta(hours=1)],
    ids=["after-exp", "before-iat"],
)
def test_a_jwt_record_must_fall_within_the_token_lifetime(transactional_db, client, caller, when):
    assert jwt_post(client, caller).status_code == 200
    record = AuditRecord.objects.get()
    _rewrite(record, time=record.time + when)
    message = verify_fails("--no-anchors")
    assert f"record {record.id} " in message and "recorded at" in message, message


def test_a_jwt_for_another_service_does_not_belong_in_this_log(transactional_db, client, caller):
    assert jwt_post(client, caller).status_code == 200
    record = AuditRecord.objects.get()
    for_ads = mint(caller, aud="spiffe://fleamarket.local/service/ads")
    assert audit.verify_credential(for_ads, "", record.certificate) is None
    _rewrite(record, credential=for_ads)
    message = verify_fails("--no-anchors")
    assert "not this service" in message, message


def test_honest_records_fit_their_credentials(transactional_db, client, caller):
    assert signed_post(client, caller, query="name=a%20b&x=%2F").status_code == 200
    assert jwt_post(client, caller).status_code == 200
    assert "2 records" in verify_command("--no-anchors")


def test_the_signed_path_is_compared_as_django_decodes_it():
    assert _request_path("/a%20b/%E2%82%AC") == "/a b/\u20ac"
    assert _request_path("/broken/%FF") == "/broken/%FF"


def test_a_row_without_a_credential_binds_nothing():
    row = {"credential": "", "signature_base": "", "time": dt.datetime.now(dt.UTC)}
    assert check_binding(row, Binding()) is None
