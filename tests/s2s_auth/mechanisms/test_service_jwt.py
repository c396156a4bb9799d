"""ServiceJWTAuthentication through DRF: every way a self-signed JWT can be wrong."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from s2s_auth.client.auth import ServiceCredentials, ServiceJWTAuth
from s2s_auth.core import jose as tokens
from s2s_auth.core.wire import token_hash
from s2s_auth.credentials.cache import invalidate
from s2s_auth.credentials.certificates import register_certificate
from s2s_auth.credentials.principals import ensure_principal
from s2s_auth.models import ServicePrincipal

URL = "/jwt/scoped"
AUDIENCE = "spiffe://fleamarket.local/service/users"
CALLER = "spiffe://fleamarket.local/service/jwtcaller"
#: END_USER_AUDIENCE by default: the trust domain's own SPIFFE ID.
END_USERS = "spiffe://fleamarket.local"


@pytest.fixture
def pki(ca, settings):
    settings.S2S_AUTH = {
        "SERVICE_NAME": "users",
        "TRUST_DOMAIN": "fleamarket.local",
        "PKI_DIR": str(ca.directory),
    }
    return ca


@pytest.fixture
def creds(pki, db):
    issued = pki.issue("jwtcaller")
    ensure_principal("jwtcaller", ["test:read"])
    return ServiceCredentials.from_files(issued.cert_path, issued.key_path)


def mint(creds, *, key=None, header_extra=None, x5c=True, typ="s2s+jwt", **overrides):
    now = int(time.time())
    claims = {
        "iss": CALLER,
        "sub": CALLER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 30,
        "jti": tokens.new_jti(),
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    headers = {"x5c": creds.x5c} if x5c else {}
    headers.update(header_extra or {})
    return tokens.sign(claims, key or creds.private_key, typ=typ, headers=headers)


def call(client, token, **extra):
    return client.get(URL, HTTP_AUTHORIZATION=f"ServiceJWT {token}", **extra)


def test_client_hook_token_is_accepted(client, creds):
    token = ServiceJWTAuth(creds, "users").token()
    response = call(client, token)
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "jwtcaller"
    assert response.json()["mechanism"] == "service_jwt"


def test_no_scheme_is_401(client, creds):
    response = client.get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("ServiceJWT")


def test_certificate_missing_is_401(client, creds):
    response = call(client, mint(creds, x5c=False))
    assert response.status_code == 401
    assert response.json()["error"] == "certificate_missing"


def test_registered_certificate_serves_when_no_x5c(client, creds):
    principal = ServicePrincipal.objects.get(name="jwtcaller")
    register_certificate(principal, creds.cert_path.read_text())
    assert call(client, mint(creds, x5c=False)).status_code == 200


def test_certificate_from_the_mtls_connection(client, creds):
    response = call(client, mint(creds, x5c=False), SSL_CLIENT_CERT=creds.cert_path.read_text())
    assert response.status_code == 200


def test_replayed_jti_is_refused(client, creds):
    token = mint(creds)
    assert call(client, token).status_code == 200
    response = call(client, token)
    assert response.status_code == 403
    assert response.json()["error"] == "replayed_jti"


def _hs256_with_public_key(creds):
    public = (
        creds.chain[0]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    now = int(time.time())
    claims = {
        "iss": CALLER,
        "sub": CALLER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 30,
        "jti": "x",
    }
    header = {"typ": "s2s+jwt", "x5c": creds.x5c}
    signing_input = (
        base64.urlsafe_b64encode(json.dumps({"alg": "HS256", **header}).encode()).rstrip(b"=")
        + b"."
        + base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    )
    import hashlib
    import hmac

    sig = base64.urlsafe_b64encode(hmac.new(public, signing_input, hashlib.sha256).digest()).rstrip(
        b"="
    )
    return (signing_input + b"." + sig).decode()


def _flip_signature(token):
    head, payload, sig = token.split(".")
    return f"{head}.{payload}.{sig[:10]}{'A' if sig[10] != 'A' else 'B'}{sig[11:]}"


def _alg_none(creds):
    now = int(time.time())
    claims = {
        "iss": CALLER,
        "sub": CALLER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 30,
        "jti": "n",
    }
    return jwt.encode(claims, None, algorithm="none", headers={"typ": "s2s+jwt", "x5c": creds.x5c})


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda c: mint(c, exp=int(time.time()) - 100, iat=int(time.time()) - 120), "expired"),
        (
            lambda c: mint(c, iat=int(time.time()) + 300, exp=int(time.time()) + 320),
            "issued_in_future",
        ),
        (lambda c: mint(c, nbf=int(time.time()) + 300), "not_yet_valid"),
        (lambda c: mint(c, exp=int(time.time()) + 3600), "lifetime_too_long"),
        (lambda c: mint(c, aud="spiffe://fleamarket.local/service/ads"), "wrong_audience"),
        (lambda c: mint(c, iss="spiffe://fleamarket.local/service/ads"), "wrong_issuer"),
        (lambda c: mint(c, sub="spiffe://fleamarket.local/service/ads"), "wrong_subject"),
        (lambda c: mint(c, jti=None), "missing_claim"),
        (lambda c: mint(c, typ="dpop+jwt"), "wrong_type"),  # typ JWT: a JWT-SVID
        (lambda c: mint(c, typ="at+jwt"), "wrong_type"),
        (lambda c: mint(c, key=ec.generate_private_key(ec.SECP256R1())), "bad_signature"),
        (lambda c: mint(c, key=ed25519.Ed25519PrivateKey.generate()), "algorithm_not_allowed"),
        (_alg_none, "malformed_token"),  # alg none has an empty signature part
        (lambda c: _alg_none(c) + "c2ln", "algorithm_not_allowed"),
        (_hs256_with_public_key, "algorithm_not_allowed"),
        (lambda c: _flip_signature(mint(c)), "bad_signature"),
        (lambda c: "not.a.token!", "malformed_token"),
        (lambda c: "%%%", "malformed_token"),
        (lambda c: "a" * 100_000, "token_too_large"),
    ],
)
def test_bad_tokens_are_403_with_reason(client, creds, make, code):
    response = call(client, make(creds))
    assert response.status_code == 403, response.json()
    assert response.json()["error"] == code


@pytest.mark.parametrize("name", ["jku", "x5u", "jwk"])
def test_header_supplied_keys_are_refused(client, creds, name):
    token = mint(creds)
    _, payload, sig = token.split(".")
    header = jwt.get_unverified_header(token)
    header[name] = "https://attacker.example/key" if name != "jwk" else {"kty": "EC"}
    forged = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    response = call(client, f"{forged}.{payload}.{sig}")
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden_header"


def test_x5c_from_another_ca_is_refused(client, creds, rogue_ca):
    rogue = rogue_ca.issue("jwtcaller")
    rogue_creds = ServiceCredentials.from_files(rogue.cert_path, rogue.key_path)
    response = call(client, mint(rogue_creds))
    assert response.status_code == 403
    assert response.json()["error"] == "untrusted_chain"


def test_x5c_of_another_service_cannot_sign_for_us(client, creds, pki):
    other = pki.issue("othersvc")
    other_creds = ServiceCredentials.from_files(other.cert_path, other.key_path)
    # Signed by othersvc's key but claiming to be jwtcaller: iss must match the cert.
    response = call(client, mint(other_creds))
    assert response.status_code == 403
    assert response.json()["error"] == "wrong_issuer"


def test_garbage_x5c_is_a_clean_403(client, creds):
    response = call(client, mint(creds, x5c=False, header_extra={"x5c": ["***"]}))
    assert response.status_code == 403
    assert response.json()["error"] == "malformed_token"


def test_disabled_principal_is_refused(client, creds):
    ServicePrincipal.objects.filter(name="jwtcaller").update(enabled=False)
    invalidate()  # an UPDATE sends no signal (principal cache)
    response = call(client, mint(creds))
    assert response.status_code == 403
    assert response.json()["error"] == "principal_disabled"


def test_revoked_certificate_is_refused(client, creds, pki):
    pki.revoke("jwtcaller")
    response = call(client, mint(creds))
    assert response.status_code == 403
    assert response.json()["error"] == "revoked"


def with_user(client, creds, user, *, ath=None, send=True, **claims):
    """A call forwarding ``user`` (a token) beside the JWT, committed by ``ath``."""
    ath = token_hash(user) if ath is None else ath
    extra = {"HTTP_S2S_END_USER_TOKEN": user} if send else {}
    return call(client, mint(creds, ath=ath, **claims), **extra)


def test_forged_end_user_context_fails_the_whole_request(client, creds):
    forged_user = tokens.sign(
        {"sub": "1", "aud": END_USERS}, ec.generate_private_key(ec.SECP256R1())
    )
    response = with_user(client, creds, forged_user)
    assert response.status_code == 403
    assert response.json()["error"].startswith(("end_user", "unknown_key", "bad_signature"))


# -- the forwarded end user, verified against the identity service's JWKS ---------------


@pytest.fixture
def identity_service(settings, ca, creds):
    from s2s_auth.core.access_tokens import verified_token_cache
    from s2s_auth.core.jwks import clear_jwks_caches
    from tests.s2s_auth.mechanisms.test_access_token import ISSUER, JWKSServer, Keys

    keys = Keys()
    keys.new("k1")
    server = JWKSServer()
    server.jwks = {"keys": [keys.jwk("k1")]}
    settings.S2S_AUTH = {
        **settings.S2S_AUTH,
        "ACCESS_TOKEN_ISSUER": ISSUER,
        "JWKS_URL": server.url,
        # These tests forward the user's own token: the opt-in for peers that cannot
        # exchange (test_user_context covers exchanged tokens and the default).
        "ACCEPT_FORWARDED_USER_TOKENS": True,
    }
    clear_jwks_caches()
    verified_token_cache().clear()
    yield keys
    server.stop()
    clear_jwks_caches()


def user_token(keys, **claims):
    from tests.s2s_auth.mechanisms.test_access_token import mint as mint_access

    base = {"sub": "42", "aud": END_USERS, "username": "alice", "scope": "ads:write"}
    base.update(claims)
    return mint_access(keys, **base)


def test_forwarded_end_user_is_exposed(client, creds, identity_service):
    response = with_user(client, creds, user_token(identity_service))
    assert response.status_code == 200, response.json()
    assert response.json()["end_user"] == "42"


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"exp": int(time.time()) - 100, "iat": int(time.time()) - 200}, "end_user_expired"),
        ({"aud": "spiffe://fleamarket.local/service/users"}, "end_user_wrong_audience"),
        ({"sub": "spiffe://fleamarket.local/service/ads"}, "end_user_not_a_user"),
    ],
)
def test_bad_forwarded_end_user_fails_the_request(client, creds, identity_service, claims, code):
    response = with_user(client, creds, user_token(identity_service, **claims))
    assert response.status_code == 403
    assert response.json()["error"] == code


def test_end_user_token_signed_by_another_key_fails(client, creds, identity_service):
    nested = user_token(identity_service, key=ec.generate_private_key(ec.SECP256R1()))
    response = with_user(client, creds, nested)
    assert response.status_code == 403
    assert response.json()["error"] == "end_user_bad_signature"


def test_accepted_service_jwt_is_audited_and_reverifiable(client, creds):
    from django.core.management import call_command

    from s2s_auth import audit
    from s2s_auth.models import AuditRecord

    audit.reset_writer_chains()
    token = mint(creds)
    assert call(client, token).status_code == 200
    record = AuditRecord.objects.filter(outcome="accepted", mechanism="service_jwt").get()
    assert record.credential == token
    assert record.principal == CALLER
    call_command("s2s_audit", "verify")


@pytest.mark.parametrize(("fail", "status"), [("", 200), ("500", 500), ("raise", 500)])
def test_read_only_request_audited_after_the_view(client, creds, fail, status):
    """GET runs without a transaction; its accepted record is written only if it worked."""
    from s2s_auth.models import AuditRecord

    client.raise_request_exception = False
    response = client.get(
        "/jwt/read", {"fail": fail} if fail else {}, HTTP_AUTHORIZATION=f"ServiceJWT {mint(creds)}"
    )
    assert response.status_code == status
    accepted = AuditRecord.objects.filter(outcome="accepted", path="/jwt/read").count()
    assert accepted == (1 if status == 200 else 0)


# -- the end user's token travels beside the JWT, never inside it (issue 17, item 4) ----


@pytest.mark.parametrize(
    ("how", "code"),
    [
        ("header without ath", "end_user_uncommitted"),
        ("ath without header", "end_user_missing"),
        ("another user's token", "end_user_mismatch"),
    ],
)
def test_the_forwarded_token_must_match_the_commitment(client, creds, identity_service, how, code):
    alice = user_token(identity_service)
    mallory = user_token(identity_service, sub="666", username="mallory")
    if how == "header without ath":
        response = call(client, mint(creds), HTTP_S2S_END_USER_TOKEN=alice)
    elif how == "ath without header":
        response = with_user(client, creds, alice, send=False)
    else:
        response = with_user(client, creds, mallory, ath=token_hash(alice))
    assert (response.status_code, response.json()["error"]) == (403, code)


def test_a_token_nested_in_the_jwt_is_refused_and_not_kept(client, creds, identity_service):
    from s2s_auth.models import AuditRecord

    alice = user_token(identity_service)
    response = call(client, mint(creds, end_user_token=alice))
    assert (response.status_code, response.json()["error"]) == (403, "end_user_token_nested")
    assert alice not in _everything_the_audit_log_shows()
    record = AuditRecord.objects.get(reason="end_user_token_nested")
    assert record.credential == ""
    assert record.credential_hash  # what the caller sent, identified by its hash


def _everything_the_audit_log_shows() -> str:
    """Every column of every record, the stored JWTs decoded, and the export."""
    import io

    from django.core.management import call_command

    from s2s_auth import audit
    from s2s_auth.models import AuditRecord

    seen = []
    for record in AuditRecord.objects.all():
        row = audit.row_dict(record)
        seen.append(json.dumps(row, default=str))
        decoded = audit.decode_jwt_unverified(record.credential or "")
        if decoded:
            seen.append(json.dumps(decoded))
    out = io.StringIO()
    call_command("s2s_audit", "export", "--since", "2000-01-01", stdout=out)
    seen.append(out.getvalue())
    return "\n".join(seen)


def test_a_forwarded_user_token_cannot_be_lifted_from_the_audit_log(
    client, creds, identity_service
):
    """ads' call on behalf of alice, through the client hook: the audit log keeps a JWT
    that re-verifies and commits to alice's token, and not the token itself. The JWT
    lifted from the table cannot be used again either."""
    import types

    from django.core.management import call_command

    from s2s_auth import audit
    from s2s_auth.client.auth import end_user_context
    from s2s_auth.models import AuditRecord

    audit.reset_writer_chains()
    alice = user_token(identity_service)
    outgoing = types.SimpleNamespace(headers={})
    with end_user_context(alice):
        ServiceJWTAuth(creds, "users")(outgoing)
    _, jwt_sent = outgoing.headers["Authorization"].split(" ", 1)
    response = call(
        client, jwt_sent, HTTP_S2S_END_USER_TOKEN=outgoing.headers["S2S-End-User-Token"]
    )
    assert response.status_code == 200, response.json()
    assert response.json()["end_user"] == "42"

    shown = _everything_the_audit_log_shows()
    assert alice not in shown
    record = AuditRecord.objects.get(outcome="accepted", mechanism="service_jwt")
    assert record.end_user == "42"
    assert record.claims["ath"] == token_hash(alice)
    call_command("s2s_audit", "verify", "--no-anchors")  # the stored JWT re-verifies

    lifted = record.credential
    response = call(client, lifted)
    assert (response.status_code, response.json()["error"]) == (403, "end_user_missing")
