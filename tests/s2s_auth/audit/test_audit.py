"""The non-repudiation audit log: records, chains, transactions, verify/export/prune, admin.

Real database (SQLite, or PostgreSQL with DATABASE_URL), real certificates from the
session CA, real signatures; nothing is mocked. Tampering goes through raw SQL, as an
attacker with database access would (table and column names are constants here).
"""
# ruff: noqa: S608

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import threading
import time
import types

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.verification import PolicyBuilder, Store
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.test import Client, RequestFactory, override_settings

from s2s_auth import audit
from s2s_auth.audit import events
from s2s_auth.core import httpsig
from s2s_auth.core import jose as tokens
from s2s_auth.models import AuditCheckpoint, AuditRecord, ServicePrincipal

CALLER = "audit-caller"
AUDIENCE = "spiffe://fleamarket.local/service/users"
TABLE = AuditRecord._meta.db_table
WRITE_URL = "/audit-test/write"


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def caller(ca):
    issued = ca.issue(CALLER)
    return types.SimpleNamespace(
        spiffe_id=issued.spiffe_id,
        key=ca.load_key(CALLER),
        chain_pem=issued.cert_path.read_text(),
        leaf_pem=ca.load_certificate(CALLER).public_bytes(serialization.Encoding.PEM).decode(),
    )


@pytest.fixture(autouse=True)
def audit_settings(ca, settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "PKI_DIR": str(ca.directory)}
    audit.reset_writer_chains()
    yield
    audit.reset_writer_chains()


@pytest.fixture
def atomic_requests(request):
    """ATOMIC_REQUESTS on or off for this test (a database setting, read per request)."""
    settings_dict = connections["default"].settings_dict
    before = settings_dict["ATOMIC_REQUESTS"]
    settings_dict["ATOMIC_REQUESTS"] = request.param
    yield request.param
    settings_dict["ATOMIC_REQUESTS"] = before


_names = iter(range(10**6))


def mint(caller, **extra) -> str:
    now = int(time.time())
    claims = {
        "iss": caller.spiffe_id,
        "sub": caller.spiffe_id,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 30,
        "jti": tokens.new_jti(),
        **extra,
    }
    return tokens.sign(claims, caller.key)


def cert_header(pem: str) -> str:
    return base64.b64encode(pem.encode()).decode()


def jwt_post(client, caller, query=None, body=b'{"x": 1}', token=None, pem=None):
    query = query or f"name=ok{next(_names)}"
    return client.post(
        f"{WRITE_URL}?{query}",
        data=body,
        content_type="application/json",
        headers={
            "Authorization": f"TestJWT {token or mint(caller)}",
            "X-Test-Cert": cert_header(pem or caller.chain_pem),
        },
    )


def signed_post(client, caller, query=None, body=b'{"signed": true}'):
    query = query or f"name=sig{next(_names)}"
    message = types.SimpleNamespace(
        method="POST",
        url=f"http://testserver{WRITE_URL}?{query}",
        headers={"Content-Type": "application/json"},
        body=body,
    )
    httpsig.sign_request(message, key_id=CALLER, private_key=caller.key)
    return client.post(
        f"{WRITE_URL}?{query}",
        data=body,
        content_type="application/json",
        headers={**message.headers, "X-Test-Cert": cert_header(caller.chain_pem)},
    )


def verify_command(*args) -> str:
    out = io.StringIO()
    call_command("s2s_audit", "verify", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def verify_fails(*args) -> str:
    with pytest.raises(CommandError) as excinfo:
        verify_command(*args)
    return str(excinfo.value)


def make_records(client, caller, n=3) -> list[AuditRecord]:
    for _ in range(n):
        assert jwt_post(client, caller, query=f"name=rec{next(_names)}").status_code == 200
    return list(AuditRecord.objects.order_by("id"))


# ------------------------------------------------------------------ accepted records


def test_signed_jwt_accepted_record_holds_the_evidence_and_verifies(
    transactional_db, client, caller, ca
):
    token = mint(caller)
    body = b'{"x": 1}'
    response = jwt_post(client, caller, body=body, token=token)
    assert response.status_code == 200, response.content

    record = AuditRecord.objects.get()
    assert record.outcome == "accepted"
    assert record.mechanism == "test_jwt"
    assert record.principal == caller.spiffe_id
    assert record.credential == token
    assert record.claims["jti"] == jwt.decode(token, options={"verify_signature": False})["jti"]
    assert (record.method, record.path) == ("POST", WRITE_URL)
    assert record.client_address == "127.0.0.1"
    assert record.body_digest == httpsig.content_digest(body)
    assert record.body_digest.startswith("sha-256=:")
    assert record.certificate == caller.chain_pem.replace("\r", "")
    leaf = x509.load_pem_x509_certificate(caller.chain_pem.encode())
    assert record.fingerprint == leaf.fingerprint(hashes.SHA256()).hex()
    assert (record.seq, record.prev_hash) == (1, audit.GENESIS)

    output = verify_command("--anchors", str(ca.ca_path))
    assert "OK: 1 records in 1 chains, 1 signatures verified" in output
    assert "certificate paths checked" in output


def test_a_leaf_alone_is_stored_with_its_intermediate(transactional_db, client, caller):
    assert jwt_post(client, caller, pem=caller.leaf_pem).status_code == 200
    stored = x509.load_pem_x509_certificates(AuditRecord.objects.get().certificate.encode())
    assert [c.subject for c in stored] == [
        c.subject for c in x509.load_pem_x509_certificates(caller.chain_pem.encode())
    ]


def test_rfc9421_signature_and_base_are_stored_and_reverified(transactional_db, client, caller, ca):
    response = signed_post(client, caller)
    assert response.status_code == 200, response.content
    record = AuditRecord.objects.get()
    assert record.mechanism == "test_signature"
    assert record.signature_base.splitlines()[0] == '"@method": POST'
    assert record.credential.startswith("sig1=:")
    verify_command("--anchors", str(ca.ca_path))

    # A consistent rewrite (hash recomputed) of the signed content is still caught:
    # the stored signature no longer verifies over the stored base.
    row = audit._row_dict(record)
    row["signature_base"] = row["signature_base"].replace("POST", "GET", 1)
    forged_hash = audit.compute_hash(row)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET signature_base = %s, hash = %s WHERE id = %s",
            [row["signature_base"], forged_hash, record.id],
        )
    message = verify_fails("--no-anchors")
    assert f"record {record.id}" in message
    assert "does not verify" in message


def test_private_key_material_in_certificate_pem_is_never_stored(transactional_db, caller):
    key_pem = caller.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    request = RequestFactory().get("/x")
    events.record(
        request,
        mechanism="mtls",
        outcome="accepted",
        principal=caller.spiffe_id,
        certificate_pem=caller.chain_pem + key_pem,
    )
    record = AuditRecord.objects.get()
    assert "PRIVATE KEY" not in record.certificate
    assert record.certificate.count("BEGIN CERTIFICATE") == 2


# ------------------------------------------------------------------ tampering


def _changed(column: str, value):
    if column == "time":
        return value + dt.timedelta(seconds=1)
    if column == "seq":
        return value + 100
    if column == "claims":
        return json.dumps({**value, "tampered": True})
    if column == "outcome":
        return "refused" if value == "accepted" else "accepted"
    if column in ("hash", "prev_hash", "chain_id", "fingerprint", "credential_hash"):
        return ("f" if value[:1] != "f" else "e") + value[1:]
    return (value or "") + "X" if column != "method" else "PUT"


@pytest.mark.parametrize("column", [*audit.HASHED_FIELDS, "hash"])
def test_editing_any_column_of_any_row_is_detected_and_named(
    transactional_db, client, caller, column
):
    records = make_records(client, caller, 3)
    verify_command("--no-anchors")
    for target in records:
        original = getattr(target, column)
        stored = json.dumps(original) if column == "claims" else original
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {TABLE} SET {column} = %s WHERE id = %s",
                [_changed(column, original), target.id],
            )
        message = verify_fails("--no-anchors")
        assert f"record {target.id} " in message, message
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {TABLE} SET {column} = %s WHERE id = %s", [stored, target.id])
        verify_command("--no-anchors")


def test_deleting_a_middle_row_is_detected(transactional_db, client, caller):
    _, middle, last = make_records(client, caller, 3)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [middle.id])
    message = verify_fails("--no-anchors")
    assert f"record {last.id} " in message
    assert "sequence gap" in message


def test_deleting_the_first_row_is_detected(transactional_db, client, caller):
    first, *_ = make_records(client, caller, 3)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [first.id])
    assert "sequence gap" in verify_fails("--no-anchors")


def _insert(row: dict) -> int:
    record = AuditRecord(**{k: v for k, v in row.items() if k != "id"})
    record.save(force_insert=True)
    return record.id


def _forged_garbage_hash(records, caller, rogue_ca):
    row = audit._row_dict(records[1])
    row.update(chain_id="f" * 32, seq=1, prev_hash=audit.GENESIS, hash="ab" * 32)
    return row


def _forged_tail_replaying_a_credential(records, caller, rogue_ca):
    # Appended to a chain, perfectly linked and hashed, with another path: only the
    # replayed single-use credential gives it away.
    row = audit._row_dict(records[-1])
    row.update(seq=row["seq"] + 1, prev_hash=row["hash"], path="/api/v1/transfer-everything")
    row["hash"] = audit.compute_hash(row)
    return row


def _forged_chain_signed_by_a_rogue_ca(records, caller, rogue_ca):
    # A whole new chain, self-consistent, with a JWT that verifies with the stored
    # certificate: but that certificate comes from another CA.
    rogue = rogue_ca.issue(CALLER)
    key = rogue_ca.load_key(CALLER)
    token = mint(types.SimpleNamespace(spiffe_id=caller.spiffe_id, key=key))
    row = audit._row_dict(records[0])
    row.update(
        chain_id="e" * 32,
        seq=1,
        prev_hash=audit.GENESIS,
        credential=token,
        certificate=rogue.cert_path.read_text(),
        fingerprint=rogue.fingerprint,
    )
    row["hash"] = audit.compute_hash(row)
    return row


@pytest.mark.parametrize(
    "forge",
    [
        _forged_garbage_hash,
        _forged_tail_replaying_a_credential,
        _forged_chain_signed_by_a_rogue_ca,
    ],
)
def test_an_inserted_forged_row_is_detected(transactional_db, client, caller, ca, rogue_ca, forge):
    records = make_records(client, caller, 3)
    forged_id = _insert(forge(records, caller, rogue_ca))
    message = verify_fails("--anchors", str(ca.ca_path))
    assert f"record {forged_id} " in message, message


def test_a_deleted_tail_needs_anchored_heads(transactional_db, client, caller, tmp_path):
    make_records(client, caller, 3)
    heads = io.StringIO()
    call_command("s2s_audit", "heads", stdout=heads)
    heads_file = tmp_path / "heads.jsonl"
    heads_file.write_text(heads.getvalue())
    assert json.loads(heads.getvalue().splitlines()[0])["seq"] == 3
    verify_command("--no-anchors", "--heads", str(heads_file))

    AuditRecord.objects.filter(seq=3).delete()
    verify_command("--no-anchors")  # a hash chain alone cannot see a missing tail...
    message = verify_fails("--no-anchors", "--heads", str(heads_file))
    assert "tail was deleted" in message  # ...an anchored head can


# ------------------------------------------------------------------ transactions


@pytest.mark.parametrize("atomic_requests", [False, True], indirect=True)
@pytest.mark.parametrize("fail", ["raise", "500"])
def test_a_failing_view_leaves_no_accepted_record_and_no_writes(
    transactional_db, caller, atomic_requests, fail
):
    client = Client(raise_request_exception=False)
    response = jwt_post(client, caller, query=f"name=doomed&fail={fail}")
    assert response.status_code == 500
    assert not ServicePrincipal.objects.filter(name="doomed").exists()
    assert not AuditRecord.objects.filter(outcome="accepted").exists()

    # The writer's chain did not advance past the rolled-back row: no gap.
    assert jwt_post(client, caller, query="name=fine").status_code == 200
    assert ServicePrincipal.objects.filter(name="fine").exists()
    assert AuditRecord.objects.get().seq == 1
    verify_command("--no-anchors")


@pytest.mark.parametrize("atomic_requests", [False, True], indirect=True)
def test_a_successful_view_commits_its_writes_with_the_accepted_record(
    transactional_db, client, caller, atomic_requests
):
    assert jwt_post(client, caller, query="name=kept").status_code == 200
    assert ServicePrincipal.objects.filter(name="kept").exists()
    assert AuditRecord.objects.filter(outcome="accepted").count() == 1


@pytest.mark.parametrize("atomic_requests", [False, True], indirect=True)
def test_a_refused_request_leaves_a_refused_record(
    transactional_db, client, caller, atomic_requests
):
    token = mint(caller)
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = jwt_post(client, caller, query="name=never", token=tampered)
    assert response.status_code == 403
    assert response.json()["error"] == "bad_signature"
    assert not ServicePrincipal.objects.filter(name="never").exists()
    record = AuditRecord.objects.get()
    assert (record.outcome, record.reason, record.mechanism) == (
        "refused",
        "bad_signature",
        "test_jwt",
    )
    assert record.credential == tampered  # what was presented, for the record
    assert record.principal == caller.spiffe_id
    verify_command("--no-anchors")  # a refused forgery does not break verification


@pytest.mark.parametrize("atomic_requests", [False, True], indirect=True)
def test_no_credential_at_all_is_recorded_as_not_authenticated(
    transactional_db, client, atomic_requests
):
    response = client.post(WRITE_URL, data=b"{}", content_type="application/json")
    assert response.status_code == 401
    record = AuditRecord.objects.get()
    assert (record.outcome, record.mechanism, record.reason) == (
        "refused",
        "none",
        "not_authenticated",
    )
    assert record.principal == ""


@pytest.mark.parametrize("atomic_requests", [False, True], indirect=True)
def test_authenticated_but_not_authorised_is_one_refused_record(
    transactional_db, client, caller, atomic_requests
):
    response = client.get(
        "/audit-test/scoped",
        headers={
            "Authorization": f"TestJWT {mint(caller)}",
            "X-Test-Cert": cert_header(caller.chain_pem),
        },
    )
    assert response.status_code == 403
    record = AuditRecord.objects.get()
    assert (record.outcome, record.mechanism, record.reason, record.principal) == (
        "refused",
        "test_jwt",
        "insufficient_scope",
        caller.spiffe_id,
    )


@override_settings(
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
)
@pytest.mark.parametrize("atomic_requests", [True], indirect=True)
def test_without_the_middleware_atomic_requests_loses_refusals(
    transactional_db, client, caller, atomic_requests
):
    """Why AuditMiddleware exists: DRF rolls the refusal back with the request."""
    tampered = mint(caller)[:-4] + "AAAA"
    assert jwt_post(client, caller, token=tampered).status_code == 403
    assert not AuditRecord.objects.exists()


def test_non_s2s_views_are_left_alone(transactional_db, client):
    assert client.get("/audit-test/plain").status_code == 200
    assert not AuditRecord.objects.exists()


def test_nested_savepoints_keep_the_chain_gapless(transactional_db):
    request = RequestFactory().get("/x")

    def write(reason):
        events.record(request, mechanism="m", outcome="accepted", reason=reason)

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


def test_concurrent_writers_keep_every_chain_verifiable(transactional_db, caller, ca):
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
                            events.record(request, mechanism="m", outcome="accepted", reason="lost")
                            raise RuntimeError("rollback")
                    except RuntimeError:
                        pass
                with serial:
                    events.record(
                        request,
                        mechanism="test_jwt",
                        outcome="accepted",
                        principal=caller.spiffe_id,
                        credential=token,
                        certificate_pem=caller.chain_pem,
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


# ------------------------------------------------------------------ prune


def test_prune_keeps_verify_passing(transactional_db, client, caller):
    old = make_records(client, caller, 4)
    time.sleep(0.05)
    cutoff = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    make_records(client, caller, 2)
    days = (dt.datetime.now(dt.UTC) - cutoff).total_seconds() / 86400

    out = io.StringIO()
    call_command("s2s_audit", "prune", "--older-than", repr(days), stdout=out)
    assert "Deleted 4 records" in out.getvalue()
    assert not AuditRecord.objects.filter(id__in=[r.id for r in old]).exists()
    checkpoint = AuditCheckpoint.objects.get()
    assert (checkpoint.seq, checkpoint.hash) == (4, old[-1].hash)
    verify_command("--no-anchors")

    # The checkpoint is enforced: losing the first kept row is still a gap.
    first_kept = AuditRecord.objects.order_by("seq").first()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [first_kept.id])
    assert "sequence gap" in verify_fails("--no-anchors")


def test_prune_twice_and_everything(transactional_db, client, caller):
    make_records(client, caller, 2)
    call_command("s2s_audit", "prune", "--older-than", "0", stdout=io.StringIO())
    make_records(client, caller, 2)
    verify_command("--no-anchors")
    call_command("s2s_audit", "prune", "--older-than", "0", stdout=io.StringIO())
    assert not AuditRecord.objects.exists()
    assert AuditCheckpoint.objects.get().pruned == 4
    verify_command("--no-anchors")


# ------------------------------------------------------------------ export


def _export(*args) -> list[dict]:
    out = io.StringIO()
    call_command("s2s_audit", "export", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _third_party_check(line: dict, ca_pem: bytes) -> None:
    """What an outsider does with one exported line and the CA certificate, nothing else."""
    assert hashlib.sha256(line["hash_input"].encode()).hexdigest() == line["hash"]
    hashed = json.loads(line["hash_input"])
    for name, value in hashed.items():
        if name != "v":
            assert line[name] == value, name

    root = x509.load_pem_x509_certificate(ca_pem)
    leaf, *intermediates = x509.load_pem_x509_certificates(line["certificate"].encode())
    when = dt.datetime.fromisoformat(line["time"])
    verifier = PolicyBuilder().store(Store([root])).time(when).build_client_verifier()
    verified = verifier.verify(leaf, intermediates)
    assert line["principal"] in [name.value for name in verified.subjects]

    if line["signature_base"]:
        (signature,) = [
            base64.b64decode(part.split("=:", 1)[1].rstrip(":"))
            for part in line["credential"].split(",")
        ]
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        leaf.public_key().verify(der, line["signature_base"].encode(), ec.ECDSA(hashes.SHA256()))
    else:
        claims = jwt.decode(
            line["credential"],
            leaf.public_key(),
            algorithms=["ES256", "EdDSA"],
            options={"verify_exp": False, "verify_aud": False},
        )
        assert claims["iss"] == claims["sub"] == line["principal"]


def test_an_exported_record_is_verifiable_with_only_the_ca_certificate(
    transactional_db, client, caller, ca
):
    assert jwt_post(client, caller).status_code == 200
    assert signed_post(client, caller).status_code == 200
    first, second = AuditRecord.objects.order_by("id")
    (line,) = _export(str(first.id))
    assert set(line) >= {
        "id",
        "time",
        "mechanism",
        "principal",
        "end_user",
        "outcome",
        "reason",
        "method",
        "path",
        "body_digest",
        "credential",
        "certificate",
        "chain_id",
        "seq",
        "prev_hash",
        "hash",
    }
    ca_pem = ca.ca_path.read_bytes()
    _third_party_check(line, ca_pem)
    lines = _export("--since", first.time.isoformat())
    assert [item["id"] for item in lines] == [first.id, second.id]
    _third_party_check(lines[1], ca_pem)
    assert lines[1]["prev_hash"] == lines[0]["hash"]  # consecutive in one chain

    # The check can fail: a forged credential in the line does not pass.
    forged = dict(line, credential=mint(caller)[:-4] + "AAAA")
    with pytest.raises(jwt.InvalidSignatureError):
        _third_party_check(
            dict(
                forged,
                hash_input=line["hash_input"].replace(
                    json.dumps(line["credential"]), json.dumps(forged["credential"])
                ),
                hash=hashlib.sha256(
                    line["hash_input"]
                    .replace(json.dumps(line["credential"]), json.dumps(forged["credential"]))
                    .encode()
                ).hexdigest(),
            ),
            ca_pem,
        )


def test_export_refuses_unknown_ids(transactional_db):
    with pytest.raises(CommandError, match="No audit record 999"):
        _export("999")


# ------------------------------------------------------------------ access tokens


@pytest.mark.parametrize("misuse", [False, True])
def test_access_token_claims_are_stored_without_the_raw_token(
    transactional_db, client, caller, misuse
):
    now = int(time.time())
    claims = {"iss": "https://users.local", "sub": caller.spiffe_id, "scope": "users:read"}
    claims.update(iat=now, exp=now + 600, jti=tokens.new_jti())
    token = tokens.sign(claims, caller.key, typ="at+jwt")
    response = client.post(
        "/audit-test/access-token" + ("?misuse=1" if misuse else ""),
        data={"token": token, "claims": claims},
        content_type="application/json",
    )
    assert response.status_code == 200
    record = AuditRecord.objects.get()
    assert record.claims == claims
    assert record.credential == ""
    assert record.credential_hash == hashlib.sha256(token.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {TABLE}")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    signature = token.rsplit(".", 1)[1]
    assert token not in stored
    assert signature not in stored
    verify_command("--no-anchors")


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
