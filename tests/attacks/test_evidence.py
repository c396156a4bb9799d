"""The third party's check (fleamarket.attacks.evidence) on real ``s2s_audit export`` lines.

The records come from the library itself: a service JWT and an RFC 9421 signed request
accepted by the minimal test project, exported with ``s2s_audit export``. Tampering is
what someone with write access to the log would do: edit a field, or edit it and
recompute the record's hash.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json

import pytest
import requests
from django.core.management import call_command

from fleamarket.attacks import evidence, forge
from fleamarket.attacks.evidence import EvidenceError
from s2s_auth.credentials.certificates import register_certificate
from s2s_auth.models import ServicePrincipal

CALLER = "evidence-caller"
#: RFC 9530 Content-Digest of another body.
OTHER_DIGEST = f"sha-256=:{base64.b64encode(hashlib.sha256(b'other').digest()).decode()}:"


@pytest.fixture
def caller(ca, settings, transactional_db) -> forge.Identity:
    settings.S2S_AUTH = {
        "SERVICE_NAME": "users",
        "TRUST_DOMAIN": ca.trust_domain,
        "PKI_DIR": str(ca.directory),
        "HTTPSIG_ORIGIN": "http://testserver",
        # Both records in the request's thread, so they are consecutive in one chain
        # (a GET's record would otherwise go to the writer thread's chain).
        "AUDIT_WRITE": "sync",
    }
    issued = ca.issue(CALLER)
    call_command("s2s_service", "add", CALLER, "--scope", "test:read", "--no-secret")
    register_certificate(ServicePrincipal.objects.get(name=CALLER), issued.cert_path.read_text())
    return forge.Identity(CALLER, issued.cert_path, issued.key_path)


def _signed_call(client, identity: forge.Identity):
    with requests.Session() as session:
        prepared = forge.signed_request(
            session,
            "POST",
            "http://testserver/sig/scoped?page=1",
            key_id=identity.fingerprint,
            private_key=identity.private_key,
            body=b'{"x": 1}',
        )
    headers = {
        "HTTP_" + name.upper().replace("-", "_"): value
        for name, value in prepared.headers.items()
        if name.lower() not in ("content-type", "content-length")
    }
    return client.post(
        prepared.path_url, data=prepared.body, content_type="application/json", **headers
    )


@pytest.fixture
def exported(client, caller) -> dict[str, dict]:
    """One accepted record per credential kind, as ``s2s_audit export`` prints them."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    token = forge.service_jwt(caller.private_key, forge.service_claims(CALLER), x5c=caller.x5c)
    response = client.get("/jwt/scoped", HTTP_AUTHORIZATION=f"ServiceJWT {token}")
    assert response.status_code == 200, response.content
    response = _signed_call(client, caller)
    assert response.status_code == 200, response.content
    out = io.StringIO()
    call_command("s2s_audit", "export", "--since", since.isoformat(), stdout=out)
    records = evidence.parse_export(out.getvalue())
    records = [r for r in records if r["mechanism"] != "cli"]  # the fixture's s2s_service add
    assert [r["outcome"] for r in records] == ["accepted", "accepted"]
    jwt_record, signed_record = records
    assert jwt_record["credential"] == token
    assert signed_record["signature_base"]
    return {"jwt": jwt_record, "signature": signed_record}


def rewrite(record: dict, **changes) -> dict:
    """A forger with write access: the record changed and its hash recomputed."""
    out = {**record, **changes}
    hashed = {k: v for k, v in out.items() if k not in evidence.META_FIELDS}
    hashed["v"] = out["hash_version"]
    out["hash_input"] = json.dumps(
        hashed, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    out["hash"] = hashlib.sha256(out["hash_input"].encode()).hexdigest()
    return out


def test_exported_records_are_proven_with_only_the_ca_certificate(exported, ca):
    ca_pem = ca.ca_path.read_bytes()
    jwt_summary = evidence.verify_exported_record(exported["jwt"], ca_pem)
    assert jwt_summary.startswith("JWT signature (jti ")
    sig_summary = evidence.verify_exported_record(exported["signature"], ca_pem)
    assert sig_summary.startswith("RFC 9421 signature over the stored signature base")
    assert evidence.check_links(list(exported.values())) >= 1
    # The rewriter below makes valid records: what fails in the tests after is the change.
    for record in exported.values():
        evidence.verify_exported_record(rewrite(record), ca_pem)


@pytest.mark.parametrize("kind", ["jwt", "signature"])
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("principal", "spiffe://fleamarket.local/service/someone-else"),
        ("path", "/admin/"),
        ("time", "2001-01-01T00:00:00.000000+00:00"),
        ("outcome", "refused"),
        ("detail", "edited"),
    ],
)
def test_an_edited_field_breaks_the_hash(exported, ca, kind, field, value):
    record = dict(exported[kind], **{field: value})
    with pytest.raises(EvidenceError, match=r"hash|accepted"):
        evidence.verify_exported_record(record, ca.ca_path.read_bytes())


def test_a_field_left_out_of_the_hash_is_refused(exported, ca):
    record = dict(exported["jwt"], end_user="1")
    record["hash_input"] = exported["jwt"]["hash_input"]  # hash still matches its input
    with pytest.raises(EvidenceError, match="differ"):
        evidence.check_hash(record)
    duplicated = exported["jwt"]["hash_input"][:-1] + ',"principal":"x"}'
    record = dict(
        exported["jwt"],
        hash_input=duplicated,
        hash=hashlib.sha256(duplicated.encode()).hexdigest(),
    )
    with pytest.raises(EvidenceError, match="repeats"):
        evidence.check_hash(record)


def _other_signature(record: dict) -> str:
    value = record["credential"]
    flipped = "A" if value[-10] != "A" else "B"
    return value[:-10] + flipped + value[-9:]


@pytest.mark.parametrize(
    ("kind", "change", "message"),
    [
        ("jwt", lambda r, rogue: {"credential": _other_signature(r)}, "does not verify"),
        ("signature", lambda r, rogue: {"credential": _other_signature(r)}, "no RFC 9421"),
        (
            "jwt",
            lambda r, rogue: {"principal": forge.spiffe("ads"), "claims": {}},
            "does not name",
        ),
        ("signature", lambda r, rogue: {"path": "/admin/"}, "signed path"),
        ("signature", lambda r, rogue: {"method": "DELETE"}, "signed method"),
        (
            "signature",
            lambda r, rogue: {"body_digest": OTHER_DIGEST},
            "content digest",
        ),
        ("jwt", lambda r, rogue: {"claims": {**r["claims"], "scope": "x"}}, "stored claims"),
        ("jwt", lambda r, rogue: {"time": "2001-01-01T00:00:00.000000+00:00"}, "no valid path"),
        ("jwt", lambda r, rogue: {"certificate": rogue}, "no valid path"),
    ],
)
def test_a_rewritten_record_does_not_prove_anything(exported, ca, rogue_ca, kind, change, message):
    rogue = rogue_ca.issue(CALLER).cert_path.read_text()
    record = rewrite(exported[kind], **change(exported[kind], rogue))
    with pytest.raises(EvidenceError, match=message):
        evidence.verify_exported_record(record, ca.ca_path.read_bytes())


def test_another_ca_proves_nothing(exported, rogue_ca):
    with pytest.raises(EvidenceError, match="no valid path"):
        evidence.verify_exported_record(exported["jwt"], rogue_ca.ca_path.read_bytes())


def test_a_rewritten_record_breaks_its_chain(exported):
    first, second = exported["jwt"], exported["signature"]
    assert first["chain_id"] == second["chain_id"]
    assert second["seq"] == first["seq"] + 1
    with pytest.raises(EvidenceError, match="does not link"):
        evidence.check_links([rewrite(first, detail="edited"), second])
    with pytest.raises(EvidenceError, match="two different records"):
        evidence.check_links([first, rewrite(first, detail="edited")])
    genesis = rewrite(first, seq=1, prev_hash="f" * 64)
    with pytest.raises(EvidenceError, match="does not link"):
        evidence.check_links([genesis])
    assert evidence.check_links([second]) == 0  # a selection: the gap is not checked
