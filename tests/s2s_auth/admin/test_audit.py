"""The read-only audit admin (``s2s_auth.admin.audit``): fixed query count, re-verification."""

from __future__ import annotations

from s2s_auth.models import AuditRecord
from tests.s2s_auth.audit.helpers import (
    jwt_post,
    make_records,
    mint,
    signed_post,
)

# ------------------------------------------------------------------ admin


def test_admin_list_is_read_only_and_costs_a_fixed_number_of_queries(
    transactional_db, admin_client, client, caller, django_assert_max_num_queries
):
    make_records(client, caller, 3)
    with django_assert_max_num_queries(12):
        small = admin_client.get("/admin/s2s_auth/auditrecord/")
    assert small.status_code == 200
    make_records(client, caller, 12)
    with django_assert_max_num_queries(12):
        response = admin_client.get("/admin/s2s_auth/auditrecord/")
    assert response.status_code == 200
    html = response.content.decode()
    assert caller.spiffe_id in html
    assert "test_jwt" in html
    assert "/admin/s2s_auth/auditrecord/add/" not in html
    assert 'value="delete_selected"' not in html
    for filtered in ("?outcome__exact=refused", "?mechanism__exact=test_jwt", "?q=rec1"):
        assert admin_client.get("/admin/s2s_auth/auditrecord/" + filtered).status_code == 200
    assert "By principal" in html and "By mechanism" in html and "By outcome" in html

    record = AuditRecord.objects.first()
    assert admin_client.get("/admin/s2s_auth/auditrecord/add/").status_code == 403
    delete = admin_client.post(f"/admin/s2s_auth/auditrecord/{record.id}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    assert AuditRecord.objects.filter(id=record.id).exists()


def test_admin_detail_decodes_the_jwt_and_reverifies_it(
    transactional_db, admin_client, client, caller
):
    assert jwt_post(client, caller).status_code == 200
    tampered = mint(caller)[:-4] + "AAAA"
    assert jwt_post(client, caller, token=tampered).status_code == 403
    good, bad = AuditRecord.objects.order_by("id")

    page = admin_client.get(f"/admin/s2s_auth/auditrecord/{good.id}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "&quot;alg&quot;: &quot;ES256&quot;" in html  # decoded header
    assert "&quot;aud&quot;: &quot;spiffe://fleamarket.local/service/users&quot;" in html
    assert ">yes</strong>" in html
    assert "matches the content" in html
    assert 'name="_save"' not in html  # read-only: no save button

    html = admin_client.get(f"/admin/s2s_auth/auditrecord/{bad.id}/change/").content.decode()
    assert ">no</strong>" in html
    assert "bad_signature" in html

    rfc = signed_post(client, caller)
    assert rfc.status_code == 200
    signed = AuditRecord.objects.order_by("id").last()
    html = admin_client.get(f"/admin/s2s_auth/auditrecord/{signed.id}/change/").content.decode()
    assert "@signature-params" in html
    assert ">yes</strong>" in html


def test_admin_detail_says_when_the_record_is_not_what_was_signed(
    transactional_db, admin_client, client, caller
):
    from django.db import connection

    from s2s_auth import audit
    from tests.s2s_auth.audit.helpers import TABLE

    assert signed_post(client, caller).status_code == 200
    record = AuditRecord.objects.get()
    row = audit.row_dict(record)
    row["method"] = "DELETE"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET method = %s, hash = %s WHERE id = %s",  # noqa: S608
            ["DELETE", audit.compute_hash(row), record.id],
        )
    html = admin_client.get(f"/admin/s2s_auth/auditrecord/{record.id}/change/").content.decode()
    assert ">no</strong>" in html and "covers method POST" in html
