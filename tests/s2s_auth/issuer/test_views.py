"""The JSON endpoints (service token, registration, login) and discovery, over
Django's test client: status codes, bodies and headers as clients rely on them."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from s2s_auth.credentials import principals as services
from s2s_auth.issuer.models import ClientSecret
from s2s_auth.models import ServiceCertificate, ServicePrincipal

from .support import (
    ISSUER,
    STRONG,
    TOKEN_URL,
    assert_error,
    check_token,
    login,
    pem,
    post_token,
    register,
    service_token,
    spiffe,
)

# ------------------------------------------------------- JSON service-token endpoint


def test_service_token_json_endpoint(client, ads):
    name, secret = ads
    response = service_token(client, {"serviceName": name, "password": secret})
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    claims = check_token(client, response.json()["access_token"], spiffe("users"))
    assert claims["client_id"] == "ads"


def test_service_token_json_scope_and_resource(client, ads):
    name, secret = ads
    response = service_token(
        client,
        {"serviceName": name, "password": secret, "scope": "users:read", "resource": "ads"},
    )
    claims = check_token(client, response.json()["access_token"], spiffe("ads"))
    assert claims["scope"] == "users:read"


@pytest.mark.parametrize(
    "data,status,error",
    [
        ({"serviceName": "ads", "password": "wrong-wrong-wrong-wrong"}, 401, "invalid_client"),
        ({"serviceName": "nobody", "password": "wrong-wrong-wrong-wrong"}, 401, "invalid_client"),
        ({"serviceName": "ads"}, 400, "invalid_request"),
        ({"serviceName": "ads", "password": 5}, 400, "invalid_request"),
        (["ads"], 400, "invalid_request"),
    ],
)
def test_service_token_json_errors(client, ads, data, status, error):
    assert_error(service_token(client, data), status, error)


def test_service_token_json_needs_json(client, ads):
    response = client.post("/api/v1/account/service-token", data={"serviceName": "ads"})
    assert_error(response, 400, "invalid_request")


# --------------------------------------------------------------- registration


def test_register_with_password_creates_principal_without_scopes(client, issuer_conf, db):
    response = register(client, {"serviceName": "newsvc", "password": STRONG})
    assert response.status_code == 201, response.content
    assert response.json() == {
        "serviceName": "newsvc",
        "clientId": "newsvc",
        "spiffeId": spiffe("newsvc"),
        "scopes": [],
        "credentials": ["password"],
    }
    principal = ServicePrincipal.objects.get(name="newsvc")
    assert principal.scopes == ""
    assert principal.enabled
    row = ClientSecret.objects.get(principal=principal)
    assert row.algorithm == "django" and STRONG not in row.digest
    assert principal.self_registered and principal.awaiting_approval
    # no scope: no token; after a maintainer approves it and grants one, the password works
    creds = {"serviceName": "newsvc", "password": STRONG}
    assert_error(service_token(client, creds), 400, "invalid_scope")
    with pytest.raises(services.NotApproved):
        services.set_scopes("newsvc", grant=["users:read"])
    services.set_scopes("newsvc", grant=["users:read"], approve=True)
    response = service_token(client, creds)
    assert response.status_code == 200
    response = post_token(client, {"grant_type": "client_credentials"}, auth=("newsvc", STRONG))
    assert response.status_code == 200


def test_register_existing_name_is_409(client, ads):
    response = register(client, {"serviceName": "ads", "password": STRONG})
    assert response.status_code == 409
    assert response.json()["error"] == "already_registered"
    assert ServicePrincipal.objects.get(name="ads").scopes == "users:notify users:read"


@pytest.mark.parametrize(
    "data",
    [
        {"serviceName": "weak", "password": "short-pass"},  # < 16 characters
        {"serviceName": "weak", "password": "aaaaaaaaaaaaaaaaaaaa"},  # one character
        {"serviceName": "weak", "password": "weak-weak-weak-weak-123"},  # contains the name
        {"serviceName": "Not_Valid", "password": STRONG},
        {"serviceName": "weak"},
        {"password": STRONG},
        {"serviceName": "weak", "password": ["x"]},
    ],
)
def test_register_refuses_bad_input(client, issuer_conf, db, data):
    assert_error(register(client, data), 400, "invalid_request")
    assert not ServicePrincipal.objects.exists()


def test_register_can_be_closed(client, issuer_conf, db, settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "REGISTRATION_OPEN": False}
    assert_error(register(client, {"serviceName": "x", "password": STRONG}), 403, "access_denied")


def test_registration_is_closed_by_default(client, issuer_conf, db, settings):
    conf = {k: v for k, v in settings.S2S_AUTH.items() if k != "REGISTRATION_OPEN"}
    settings.S2S_AUTH = conf
    response = register(client, {"serviceName": "ads", "password": STRONG})
    assert_error(response, 403, "access_denied")
    assert not ServicePrincipal.objects.exists()


def test_a_squatted_name_gets_no_scopes_from_the_documented_add(client, issuer_conf, db):
    """Someone registers "ads" before the operator runs `s2s_service add ads --scope ...`."""
    assert register(client, {"serviceName": "ads", "password": STRONG}).status_code == 201
    with pytest.raises(services.NotApproved):
        services.ensure_principal("ads", ["users:read"])
    assert ServicePrincipal.objects.get(name="ads").scopes == ""
    creds = {"serviceName": "ads", "password": STRONG, "scope": "users:read"}
    assert_error(service_token(client, creds), 400, "invalid_scope")


def test_register_with_certificate(client, issuer_conf, db, ca, make_leaf):
    leaf = make_leaf(ca, "certsvc")
    response = register(client, {"serviceName": "certsvc"}, SSL_CLIENT_CERT=pem(leaf))
    assert response.status_code == 201, response.content
    assert response.json()["credentials"] == ["certificate"]
    principal = ServicePrincipal.objects.get(name="certsvc")
    assert principal.scopes == ""
    stored = ServiceCertificate.objects.get(principal=principal)
    assert stored.fingerprint == hashlib.sha256(leaf.cert.public_bytes(Encoding.DER)).hexdigest()
    services.set_scopes("certsvc", grant=["users:read"], approve=True)
    response = post_token(client, {"grant_type": "client_credentials"}, SSL_CLIENT_CERT=pem(leaf))
    assert response.status_code == 200, response.content


def test_register_with_certificate_of_another_name_is_refused(
    client, issuer_conf, db, ca, make_leaf
):
    leaf = make_leaf(ca, "certsvc")
    response = register(client, {"serviceName": "payments"}, SSL_CLIENT_CERT=pem(leaf))
    assert_error(response, 400, "invalid_request")
    assert not ServicePrincipal.objects.exists()


def test_register_with_rogue_certificate_is_refused(client, issuer_conf, db, rogue_ca, make_leaf):
    leaf = make_leaf(rogue_ca, "certsvc")
    response = register(client, {"serviceName": "certsvc"}, SSL_CLIENT_CERT=pem(leaf))
    assert_error(response, 403, "invalid_request")
    assert not ServicePrincipal.objects.exists()


# --------------------------------------------------------------------- login


def test_login_returns_a_user_token(client, alice):
    response = login(client, {"username": "alice", "password": "alice-password-1"})
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["expires_in"] == 900
    claims = check_token(client, body["access_token"], "fleamarket")
    assert claims["sub"] == str(alice.pk)
    assert claims["username"] == "alice"
    assert claims["scope"] == "ads:read ads:write"
    assert claims["exp"] - claims["iat"] == 900
    assert claims["client_id"] == "users"


def test_bad_login_does_not_say_which_part_was_wrong(client, alice):
    wrong_password = login(client, {"username": "alice", "password": "nope"})
    unknown_user = login(client, {"username": "mallory", "password": "alice-password-1"})
    assert_error(wrong_password, 401, "invalid_grant")
    assert_error(unknown_user, 401, "invalid_grant")
    assert wrong_password.json() == unknown_user.json()


def test_inactive_user_cannot_log_in(client, alice):
    alice.is_active = False
    alice.save()
    assert_error(
        login(client, {"username": "alice", "password": "alice-password-1"}), 401, "invalid_grant"
    )


def test_login_bad_input(client, alice):
    assert_error(login(client, {"username": "alice"}), 400, "invalid_request")
    assert_error(login(client, "not json"), 400, "invalid_request")


# ------------------------------------------------------------------ discovery


def test_jwks_document(client, issuer_conf):
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert "max-age=" in response["Cache-Control"]
    keys = response.json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "EC" and key["crv"] == "P-256"
    assert key["use"] == "sig" and key["alg"] == "ES256"
    assert key["kid"]
    assert "d" not in key


def test_authorization_server_metadata(client, ads):
    response = client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == ISSUER
    assert meta["token_endpoint"] == TOKEN_URL
    assert meta["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert meta["grant_types_supported"] == [
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "tls_client_auth",
    }
    assert "ES256" in meta["token_endpoint_auth_signing_alg_values_supported"]
    assert meta["tls_client_certificate_bound_access_tokens"] is True
    assert {"users:read", "users:notify"} <= set(meta["scopes_supported"])


def test_log_lines_escape_what_the_caller_sent(client, issuer_conf, db, caplog):
    """`%0A` in a Basic client id must not start a forged log line."""
    forged = "evil\nWARNING issuer accepted client=admin"
    with caplog.at_level("WARNING", logger="s2s_auth.issuer"):
        post_token(client, {"grant_type": "client_credentials"}, auth=(forged, "x"))
    lines = [r.getMessage() for r in caplog.records if r.name == "s2s_auth.issuer"]
    assert lines
    assert all("\n" not in line and "\r" not in line for line in lines)
    assert 'client="evil\\nWARNING issuer accepted client=admin"' in lines[-1]
