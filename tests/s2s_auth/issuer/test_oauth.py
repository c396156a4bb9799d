"""The token endpoint and the OAuth logic behind it (s2s_auth.issuer.oauth): every
client authentication method, every RFC 6749 §5.2 error, audiences and scopes."""

from __future__ import annotations

import base64
import time

import pytest
from django.utils.crypto import salted_hmac

from s2s_auth.core.jose import TokenError, new_jti, sign, unverified_header, verify
from s2s_auth.credentials import principals as services
from s2s_auth.issuer.models import ClientSecret

from .support import (
    ASSERTION_TYPE,
    ISSUER,
    TOKEN_URL,
    assert_error,
    assertion,
    check_token,
    jwks,
    pem,
    post_token,
    spiffe,
    x5t,
)

# ------------------------------------------------------------- client secrets


def test_client_secret_basic_issues_an_rfc9068_token(client, ads):
    name, secret = ads
    response = post_token(client, {"grant_type": "client_credentials"}, auth=(name, secret))
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "users:notify users:read"
    assert "refresh_token" not in body
    claims = check_token(client, body["access_token"], spiffe("users"))
    assert claims["iss"] == ISSUER
    assert claims["sub"] == spiffe("ads")
    assert claims["client_id"] == "ads"
    assert claims["aud"] == spiffe("users")
    assert claims["scope"] == "users:notify users:read"
    assert claims["exp"] - claims["iat"] == 600
    assert abs(claims["iat"] - time.time()) < 5
    assert len(claims["jti"]) >= 16
    assert "cnf" not in claims


def test_client_secret_post_issues_a_token(client, ads):
    name, secret = ads
    response = post_token(
        client,
        {"grant_type": "client_credentials", "client_id": name, "client_secret": secret},
    )
    assert response.status_code == 200, response.content
    check_token(client, response.json()["access_token"], spiffe("users"))


@pytest.mark.parametrize("query", ["?scope=users:read", "?x=1&resource=users", "?client_secret="])
def test_token_parameters_in_the_url_are_refused(client, ads, query):
    """RFC 6749 §3.2: the parameters go in the body, where they are not logged."""
    response = post_token(client, {"grant_type": "client_credentials"}, auth=ads, query=query)
    body = assert_error(response, 400, "invalid_request")
    assert body["error_description"] == "Parameters belong in the body, not the URL."


@pytest.mark.parametrize("query", ["", "?", "?x=1", "?debug&page=2"])
def test_other_url_parameters_are_ignored(client, ads, query):
    response = post_token(client, {"grant_type": "client_credentials"}, auth=ads, query=query)
    assert response.status_code == 200, response.content


def test_secret_is_stored_as_keyed_hmac_only(ads):
    name, secret = ads
    row = ClientSecret.objects.get(principal__name=name)
    assert row.algorithm == "hmac-sha256"
    assert secret not in row.digest
    expected = salted_hmac("s2s_auth.issuer.ClientSecret", secret, algorithm="sha256").hexdigest()
    assert row.digest == expected
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32  # 256 bits


def test_wrong_secret_is_invalid_client_401_with_basic_challenge(client, ads):
    name, secret = ads
    response = post_token(client, {"grant_type": "client_credentials"}, auth=(name, secret + "x"))
    assert_error(response, 401, "invalid_client")
    assert response["WWW-Authenticate"].startswith("Basic realm=")


def test_wrong_secret_in_body_is_invalid_client(client, ads):
    name, _ = ads
    response = post_token(
        client,
        {"grant_type": "client_credentials", "client_id": name, "client_secret": "nope" * 11},
    )
    assert_error(response, 401, "invalid_client")


def test_unknown_client_is_invalid_client(client, ads):
    _, secret = ads
    response = post_token(client, {"grant_type": "client_credentials"}, auth=("nobody", secret))
    assert_error(response, 401, "invalid_client")
    assert "WWW-Authenticate" in response


def test_malformed_basic_header_is_invalid_client(client, ads):
    response = post_token(
        client, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION="Basic !!notbase64"
    )
    assert_error(response, 401, "invalid_client")


def test_disabled_client_is_unauthorized_client(client, ads):
    name, secret = ads
    services.set_enabled(name, False)
    response = post_token(client, {"grant_type": "client_credentials"}, auth=(name, secret))
    assert_error(response, 400, "unauthorized_client")


def test_scope_not_granted_is_invalid_scope(client, ads):
    response = post_token(
        client, {"grant_type": "client_credentials", "scope": "users:read ads:write"}, auth=ads
    )
    body = assert_error(response, 400, "invalid_scope")
    assert "ads:write" in body["error_description"]


def test_requested_subset_of_scopes_is_issued(client, ads):
    response = post_token(
        client, {"grant_type": "client_credentials", "scope": "users:read"}, auth=ads
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "users:read"
    claims = check_token(client, response.json()["access_token"], spiffe("users"))
    assert claims["scope"] == "users:read"


def test_client_without_any_scope_gets_invalid_scope(client, issuer_conf, db):
    services.ensure_principal("bare")
    secret = services.create_client_secret("bare")
    response = post_token(client, {"grant_type": "client_credentials"}, auth=("bare", secret))
    assert_error(response, 400, "invalid_scope")


@pytest.mark.parametrize("grant_type", ["password", "authorization_code", "refresh_token"])
def test_unsupported_grant_type(client, ads, grant_type):
    response = post_token(client, {"grant_type": grant_type}, auth=ads)
    assert_error(response, 400, "unsupported_grant_type")


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"grant_type": ""},
        {"grant_type": "client_credentials", "client_secret": "x" * 43},  # no client_id
        {
            "grant_type": "client_credentials",
            "client_id": "ads",
            "client_assertion": "a.b.c",
        },  # no client_assertion_type
    ],
)
def test_missing_parameters_are_invalid_request(client, ads, data):
    response = post_token(client, data, auth=None)
    assert_error(response, 400, "invalid_request")


def test_repeated_parameter_is_invalid_request(client, ads):
    response = post_token(
        client,
        {"grant_type": "client_credentials", "scope": ["users:read", "users:notify"]},
        auth=ads,
    )
    body = assert_error(response, 400, "invalid_request")
    assert "scope" in body["error_description"]


def test_repeated_grant_type_is_invalid_request(client, ads):
    response = post_token(
        client, {"grant_type": ["client_credentials", "client_credentials"]}, auth=ads
    )
    assert_error(response, 400, "invalid_request")


def test_credentials_in_two_places_is_invalid_request(client, ads):
    name, secret = ads
    response = post_token(
        client,
        {"grant_type": "client_credentials", "client_id": name, "client_secret": secret},
        auth=ads,
    )
    body = assert_error(response, 400, "invalid_request")
    assert "client_secret_basic" in body["error_description"]


def test_client_id_in_body_differing_from_basic_is_invalid_request(client, ads):
    response = post_token(
        client, {"grant_type": "client_credentials", "client_id": "other"}, auth=ads
    )
    assert_error(response, 400, "invalid_request")


def test_json_body_is_invalid_request(client, ads):
    response = post_token(
        client, '{"grant_type": "client_credentials"}', auth=ads, content_type="application/json"
    )
    assert_error(response, 400, "invalid_request")


def test_credentials_in_query_string_are_refused(client, ads):
    name, secret = ads
    response = post_token(
        client,
        {"grant_type": "client_credentials"},
        query=f"?client_id={name}&client_secret={secret}",
    )
    assert_error(response, 400, "invalid_request")


def test_get_is_405(client, ads):
    response = client.get("/oauth/token")
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_other_authorization_scheme_is_invalid_request(client, ads):
    response = post_token(
        client, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION="Bearer abc"
    )
    assert_error(response, 400, "invalid_request")


# ------------------------------------------------------------------ audiences


def test_resource_parameter_sets_the_audience(client, ads):
    services.ensure_principal("ads-admin")
    response = post_token(
        client,
        {"grant_type": "client_credentials", "resource": spiffe("ads-admin")},
        auth=ads,
    )
    assert response.status_code == 200, response.content
    claims = check_token(client, response.json()["access_token"], spiffe("ads-admin"))
    assert claims["aud"] == spiffe("ads-admin")
    with pytest.raises(TokenError) as exc:
        check_token(client, response.json()["access_token"], spiffe("users"))
    assert exc.value.code == "wrong_audience"


def test_several_resources_and_bare_audience_names(client, ads):
    services.ensure_principal("billing")  # users: the issuer's own; ads: a principal
    response = post_token(
        client,
        {
            "grant_type": "client_credentials",
            "resource": [spiffe("users"), spiffe("ads")],
            "audience": "billing",
        },
        auth=ads,
    )
    assert response.status_code == 200, response.content
    claims = check_token(client, response.json()["access_token"], spiffe("billing"))
    assert claims["aud"] == [spiffe("users"), spiffe("ads"), spiffe("billing")]


@pytest.mark.parametrize(
    "resource",
    ["spiffe://evil.example/service/users", "https://users.example", "spiffe://fleamarket.local/x"],
)
def test_foreign_resource_is_invalid_target(client, ads, resource):
    response = post_token(
        client, {"grant_type": "client_credentials", "resource": resource}, auth=ads
    )
    assert_error(response, 400, "invalid_target")


@pytest.mark.parametrize(
    "target",
    ["nonexistent-svc", spiffe("nonexistent-svc")],
)
def test_a_target_no_service_is_registered_as_is_invalid_target(client, ads, target):
    for field in ("resource", "audience"):
        response = post_token(client, {"grant_type": "client_credentials", field: target}, auth=ads)
        body = assert_error(response, 400, "invalid_target")
        assert "nonexistent-svc" in body["error_description"]


def test_a_target_the_granted_scopes_name_needs_no_principal(client, ads):
    response = post_token(
        client, {"grant_type": "client_credentials", "resource": "users"}, auth=ads
    )
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("count", [11, 900])
def test_too_many_targets_are_invalid_target(client, ads, count):
    services.ensure_principal("billing")
    data = {"grant_type": "client_credentials", "resource": ["billing"] * count}
    assert_error(post_token(client, data, auth=ads), 400, "invalid_target")
    audience = {"grant_type": "client_credentials", "audience": " ".join(["billing"] * count)}
    assert_error(post_token(client, audience, auth=ads), 400, "invalid_target")


def test_default_audience_is_the_services_named_by_the_scopes(client, issuer_conf, db):
    services.ensure_principal("worker", ["users:notify", "ads:read", "plain"])
    secret = services.create_client_secret("worker")
    response = post_token(client, {"grant_type": "client_credentials"}, auth=("worker", secret))
    claims = check_token(client, response.json()["access_token"], spiffe("ads"))
    assert claims["aud"] == [spiffe("ads"), spiffe("users")]


def test_issuer_is_derived_from_the_request_without_setting(client, ads, settings):
    conf = dict(settings.S2S_AUTH)
    del conf["ISSUER"]
    settings.S2S_AUTH = conf
    response = post_token(client, {"grant_type": "client_credentials"}, auth=ads)
    token = response.json()["access_token"]
    key = jwks(client).get(unverified_header(token)["kid"])
    claims = verify(token, key, audience=spiffe("users"), issuer="http://testserver").claims
    assert claims["iss"] == "http://testserver"


# ------------------------------------------------------------- private_key_jwt


def pkjwt_request(client, token, **data):
    return post_token(
        client,
        {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": token,
            **data,
        },
    )


def test_private_key_jwt_issues_a_token(client, pk_client):
    response = pkjwt_request(client, assertion(pk_client, "pkjwt"), client_id="pkjwt")
    assert response.status_code == 200, response.content
    claims = check_token(client, response.json()["access_token"], spiffe("users"))
    assert claims["sub"] == spiffe("pkjwt")
    assert "cnf" not in claims


def test_private_key_jwt_accepts_the_issuer_as_audience(client, pk_client):
    response = pkjwt_request(client, assertion(pk_client, "pkjwt", aud=ISSUER))
    assert response.status_code == 200, response.content


def test_replayed_assertion_is_refused(client, pk_client):
    token = assertion(pk_client, "pkjwt")
    assert pkjwt_request(client, token).status_code == 200
    body = assert_error(pkjwt_request(client, token), 401, "invalid_client")
    assert "already used" in body["error_description"]


def test_assertion_from_rogue_ca_is_refused(client, pk_client, rogue_ca, make_leaf):
    rogue = make_leaf(rogue_ca, "pkjwt")  # same name and trust domain, other CA
    response = pkjwt_request(client, assertion(rogue, "pkjwt"))
    body = assert_error(response, 401, "invalid_client")
    assert "untrusted_chain" in body["error_description"]


def test_assertion_signed_by_another_key_than_x5c_is_refused(client, pk_client, ca, make_leaf):
    other = make_leaf(ca, "pkjwt")  # a valid certificate, but not the signing key's
    token = assertion(pk_client, "pkjwt", chain=other.chain)
    body = assert_error(pkjwt_request(client, token), 401, "invalid_client")
    assert "bad_signature" in body["error_description"]


def test_assertion_with_certificate_of_another_service_is_refused(client, pk_client, ca, make_leaf):
    services.ensure_principal("intruder", ["users:read"])
    intruder = make_leaf(ca, "intruder")
    token = assertion(intruder, "pkjwt")  # claims to be pkjwt with intruder's certificate
    assert_error(pkjwt_request(client, token, client_id="pkjwt"), 401, "invalid_client")
    token = assertion(intruder, "pkjwt")
    assert_error(pkjwt_request(client, token), 401, "invalid_client")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"aud": "https://elsewhere.test/oauth/token"},
        {"lifetime": 3601},
        {"lifetime": -120},
    ],
)
def test_assertion_with_bad_claims_is_refused(client, pk_client, kwargs):
    response = pkjwt_request(client, assertion(pk_client, "pkjwt", **kwargs))
    assert_error(response, 401, "invalid_client")


def test_assertion_without_x5c_or_tls_certificate_is_refused(client, pk_client):
    now = int(time.time())
    token = sign(
        {
            "iss": "pkjwt",
            "sub": "pkjwt",
            "aud": TOKEN_URL,
            "iat": now,
            "exp": now + 60,
            "jti": new_jti(),
        },
        pk_client.key,
    )
    assert_error(pkjwt_request(client, token), 401, "invalid_client")


def test_assertion_with_jwk_header_is_refused(client, pk_client):
    token = assertion(pk_client, "pkjwt")
    header = base64.urlsafe_b64encode(b'{"alg":"ES256","jwk":{"kty":"EC"}}').rstrip(b"=")
    forged = header.decode() + "." + token.split(".", 1)[1]
    assert_error(pkjwt_request(client, forged), 401, "invalid_client")


# ------------------------------------------------------------- tls_client_auth


def test_tls_client_auth_issues_a_certificate_bound_token(client, tls_client):
    response = post_token(
        client,
        {"grant_type": "client_credentials", "client_id": "mtlsclient"},
        SSL_CLIENT_CERT=pem(tls_client),
    )
    assert response.status_code == 200, response.content
    claims = check_token(client, response.json()["access_token"], spiffe("users"))
    assert claims["cnf"] == {"x5t#S256": x5t(tls_client)}
    assert claims["sub"] == spiffe("mtlsclient")


def test_tls_client_auth_without_certificate_is_invalid_client(client, tls_client):
    response = post_token(client, {"grant_type": "client_credentials", "client_id": "mtlsclient"})
    assert_error(response, 401, "invalid_client")


def test_tls_client_auth_with_certificate_of_another_service(client, tls_client, ca, make_leaf):
    services.ensure_principal("other", ["users:read"])
    response = post_token(
        client,
        {"grant_type": "client_credentials", "client_id": "mtlsclient"},
        SSL_CLIENT_CERT=pem(make_leaf(ca, "other")),
    )
    assert_error(response, 401, "invalid_client")


def test_tls_client_auth_with_rogue_certificate(client, tls_client, rogue_ca, make_leaf):
    response = post_token(
        client,
        {"grant_type": "client_credentials", "client_id": "mtlsclient"},
        SSL_CLIENT_CERT=pem(make_leaf(rogue_ca, "mtlsclient")),
    )
    assert_error(response, 401, "invalid_client")


def test_secret_over_mtls_binds_the_token_to_the_certificate(client, ads, ca, make_leaf):
    leaf = make_leaf(ca, "ads")
    response = post_token(
        client, {"grant_type": "client_credentials"}, auth=ads, SSL_CLIENT_CERT=pem(leaf)
    )
    assert response.status_code == 200, response.content
    claims = check_token(client, response.json()["access_token"], spiffe("users"))
    assert claims["cnf"]["x5t#S256"] == x5t(leaf)


def test_secret_over_mtls_with_certificate_of_another_service(client, ads, ca, make_leaf):
    response = post_token(
        client,
        {"grant_type": "client_credentials"},
        auth=ads,
        SSL_CLIENT_CERT=pem(make_leaf(ca, "someone-else")),
    )
    assert_error(response, 401, "invalid_client")


def test_endpoint_paths_follow_the_urlconf_and_the_script_prefix(issuer_conf, settings):
    """Reversed once per URLconf and script prefix, never served from another one."""
    from django.urls import set_script_prefix

    from s2s_auth.issuer.oauth import endpoint_path

    assert endpoint_path("token") == "/oauth/token"
    settings.ROOT_URLCONF = "tests.s2s_auth.issuer.urls_mounted"
    assert endpoint_path("token") == "/idp/oauth/token"
    set_script_prefix("/prefix/")
    try:
        assert endpoint_path("token") == "/prefix/idp/oauth/token"
    finally:
        set_script_prefix("/")
    assert endpoint_path("token") == "/idp/oauth/token"
