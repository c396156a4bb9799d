"""The identity service over Django's test client: the token endpoint (every client
authentication method and every RFC 6749 §5.2 error), the JSON service-token
endpoint, registration, end-user login and discovery."""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import quote_plus, urlencode

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from django.contrib.auth import get_user_model
from django.core.cache import cache

from s2s_auth.core.jose import JWKSet, TokenError, new_jti, sign, unverified_header, verify
from s2s_auth.credentials import principals as services
from s2s_auth.issuer.models import ClientSecret
from s2s_auth.models import ServiceCertificate, ServicePrincipal

ISSUER = "https://issuer.test"
TOKEN_URL = f"{ISSUER}/oauth/token"
TD = "fleamarket.local"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FORM = "application/x-www-form-urlencoded"


def spiffe(name: str) -> str:
    return f"spiffe://{TD}/service/{name}"


@pytest.fixture
def issuer_conf(ca, settings, tmp_path):
    """S2S_AUTH for the issuer: the session CA, a fresh key directory, a fixed issuer."""
    conf = {
        **settings.S2S_AUTH,  # TRUST_DOMAIN and the end-user token settings
        "SERVICE_NAME": "users",
        "PKI_DIR": str(ca.directory),
        "SIGNING_KEYS_DIR": str(tmp_path / "keys"),
        "ISSUER": ISSUER,
    }
    settings.S2S_AUTH = conf
    cache.clear()
    yield conf
    cache.clear()


@pytest.fixture
def ads(issuer_conf, db):
    """A client "ads" with two scopes and a generated secret: (name, secret)."""
    services.ensure_principal("ads", ["users:read", "users:notify"])
    return "ads", services.create_client_secret("ads")


def basic(client_id: str, secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def post_token(client, data, *, auth=None, content_type=FORM, query="", **extra):
    if auth is not None:
        extra["HTTP_AUTHORIZATION"] = basic(*auth)
    body = urlencode(data, doseq=True) if content_type == FORM else data
    return client.post("/oauth/token" + query, data=body, content_type=content_type, **extra)


def jwks(client) -> JWKSet:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return JWKSet.from_dict(response.json())


def check_token(client, token: str, audience, **kwargs):
    """The token verifies with s2s_auth.core.jose.verify against the published JWKS."""
    header = unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    key = jwks(client).get(header["kid"])
    return verify(token, key, audience=audience, issuer=ISSUER, typ="at+jwt", **kwargs).claims


def assert_error(response, status: int, error: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == error
    assert set(body) == {"error", "error_description"}
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"
    return body


def x5c(chain) -> list[str]:
    return [base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii") for c in chain]


def assertion(leaf, client_id: str, *, aud=TOKEN_URL, lifetime=60, key=None, chain=None, **extra):
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": now,
        "exp": now + lifetime,
        "jti": new_jti(),
        **extra,
    }
    return sign(claims, key or leaf.key, headers={"x5c": x5c(chain or leaf.chain)})


def pem(leaf) -> str:
    return leaf.chain_pem.decode("ascii")


def x5t(leaf) -> str:
    digest = hashlib.sha256(leaf.cert.public_bytes(Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


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


def test_secret_is_stored_as_keyed_hmac_only(ads):
    from django.utils.crypto import salted_hmac

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


@pytest.fixture
def pk_client(ca, make_leaf, issuer_conf, db):
    services.ensure_principal("pkjwt", ["users:read"])
    return make_leaf(ca, "pkjwt")


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
        {"lifetime": 3600},
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


@pytest.fixture
def tls_client(ca, make_leaf, issuer_conf, db):
    services.ensure_principal("mtlsclient", ["users:read"])
    return make_leaf(ca, "mtlsclient")


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


# ------------------------------------------------------------------ rate limit


def test_token_requests_are_rate_limited_per_client(client, ads, settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "TOKEN_RATE_LIMIT_PER_MINUTE": 3}
    for _ in range(3):
        assert post_token(client, {"grant_type": "client_credentials"}, auth=ads).status_code == 200
    response = post_token(client, {"grant_type": "client_credentials"}, auth=ads)
    assert_error(response, 429, "slow_down")
    assert 1 <= int(response["Retry-After"]) <= 60
    # failed attempts count too (brute force), other clients are not affected
    services.ensure_principal("other", ["users:read"])
    other = services.create_client_secret("other")
    assert (
        post_token(client, {"grant_type": "client_credentials"}, auth=("other", other)).status_code
        == 200
    )


# ------------------------------------------------------- JSON service-token endpoint


def service_token(client, data, **extra):
    return client.post(
        "/api/v1/account/service-token", data=data, content_type="application/json", **extra
    )


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


def register(client, data, **extra):
    return client.post(
        "/api/v1/account/register/service", data=data, content_type="application/json", **extra
    )


STRONG = "correct-horse-battery-staple-42"


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
    # no scope: no token; after a maintainer grants one, the password works
    creds = {"serviceName": "newsvc", "password": STRONG}
    assert_error(service_token(client, creds), 400, "invalid_scope")
    services.set_scopes("newsvc", grant=["users:read"])
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


def test_register_is_rate_limited_per_ip(client, issuer_conf, db, settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "REGISTRATION_RATE_LIMIT_PER_HOUR": 2}
    assert register(client, {"serviceName": "one", "password": STRONG}).status_code == 201
    assert register(client, {"serviceName": "two", "password": STRONG}).status_code == 201
    response = register(client, {"serviceName": "three", "password": STRONG})
    assert_error(response, 429, "slow_down")
    assert int(response["Retry-After"]) > 0
    assert not ServicePrincipal.objects.filter(name="three").exists()
    other_ip = register(
        client, {"serviceName": "three", "password": STRONG}, REMOTE_ADDR="10.0.0.9"
    )
    assert other_ip.status_code == 201


def test_register_can_be_closed(client, issuer_conf, db, settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "REGISTRATION_OPEN": False}
    assert_error(register(client, {"serviceName": "x", "password": STRONG}), 403, "access_denied")


def test_register_with_certificate(client, issuer_conf, db, ca, make_leaf):
    leaf = make_leaf(ca, "certsvc")
    response = register(client, {"serviceName": "certsvc"}, SSL_CLIENT_CERT=pem(leaf))
    assert response.status_code == 201, response.content
    assert response.json()["credentials"] == ["certificate"]
    principal = ServicePrincipal.objects.get(name="certsvc")
    assert principal.scopes == ""
    stored = ServiceCertificate.objects.get(principal=principal)
    assert stored.fingerprint == hashlib.sha256(leaf.cert.public_bytes(Encoding.DER)).hexdigest()
    services.set_scopes("certsvc", grant=["users:read"])
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


@pytest.fixture
def alice(db, issuer_conf):
    return get_user_model().objects.create_user("alice", password="alice-password-1")


def login(client, data, **extra):
    return client.post("/api/v1/auth/login", data=data, content_type="application/json", **extra)


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


def test_login_is_rate_limited_per_username_and_ip(client, alice, settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "LOGIN_RATE_LIMIT_PER_MINUTE": 2}
    for _ in range(2):
        assert login(client, {"username": "alice", "password": "bad"}).status_code == 401
    # even the right password is refused now, from this IP
    response = login(client, {"username": "alice", "password": "alice-password-1"})
    assert_error(response, 429, "slow_down")
    assert "Retry-After" in response
    other_ip = login(
        client, {"username": "alice", "password": "alice-password-1"}, REMOTE_ADDR="10.1.1.1"
    )
    assert other_ip.status_code == 200


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
    assert meta["grant_types_supported"] == ["client_credentials"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "tls_client_auth",
    }
    assert "ES256" in meta["token_endpoint_auth_signing_alg_values_supported"]
    assert meta["tls_client_certificate_bound_access_tokens"] is True
    assert {"users:read", "users:notify"} <= set(meta["scopes_supported"])
