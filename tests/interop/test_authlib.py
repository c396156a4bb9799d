"""Authlib, as an OAuth 2 client library, against the live identity service: every
client authentication method the metadata advertises, with Authlib's defaults, and
Authlib's own RFC 8414 validator on the served metadata."""

from __future__ import annotations

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from joserfc.jwk import ECKey, OKPKey

from s2s_auth.core.jose import unverified_claims, unverified_header

pytestmark = [pytest.mark.live]


def session(issuer, *args, **kwargs) -> OAuth2Session:
    client = OAuth2Session(*args, scope="users:read", **kwargs)
    client.trust_env = False
    client.verify = issuer.ca
    return client


def fetch(client: OAuth2Session, issuer) -> dict:
    return client.fetch_token(issuer.token_endpoint, grant_type="client_credentials")


def assert_service_token(token: dict, name: str) -> dict:
    assert token["token_type"].lower() == "bearer"
    claims = unverified_claims(token["access_token"])
    assert claims["client_id"] == name
    assert claims["sub"].endswith(f"/service/{name}")
    assert claims["scope"] == "users:read"
    return claims


@pytest.mark.interop("Authlib", "RFC 8414 metadata passes AuthorizationServerMetadata.validate()")
def test_metadata_passes_authlibs_validator(issuer):
    document = requests.get(issuer.metadata_url, verify=issuer.ca, timeout=10).json()
    metadata = AuthorizationServerMetadata(document)
    metadata.validate()  # raises ValueError naming the member at fault
    assert metadata["issuer"] == issuer.base
    assert "authorization_endpoint" not in metadata  # no flow we do not support
    assert set(metadata["grant_types_supported"]) >= {"client_credentials"}


@pytest.mark.interop("Authlib", "client_secret_basic")
def test_client_secret_basic(issuer):
    client = session(
        issuer,
        "authlib",
        issuer.secrets["authlib"],
        token_endpoint_auth_method="client_secret_basic",
    )
    claims = assert_service_token(fetch(client, issuer), "authlib")
    assert "cnf" not in claims  # no certificate on the connection: a plain bearer token


@pytest.mark.interop("Authlib", "client_secret_post")
def test_client_secret_post(issuer):
    client = session(
        issuer,
        "authlib",
        issuer.secrets["authlib"],
        token_endpoint_auth_method="client_secret_post",
    )
    assert_service_token(fetch(client, issuer), "authlib")


@pytest.mark.interop("Authlib", "private_key_jwt, registered EC key, defaults (1 h, no x5c)")
def test_private_key_jwt_with_authlibs_defaults_and_a_registered_key(issuer):
    key = ECKey.import_key(issuer.private_keys["authlib-pkjwt"])
    auth = PrivateKeyJWT(issuer.token_endpoint, alg="ES256")  # RS256 is only its default
    assertion = auth.sign(
        type("Auth", (), {"client_id": "authlib-pkjwt", "client_secret": key}),
        issuer.token_endpoint,
    )
    claims = unverified_claims(assertion)
    assert claims["exp"] - claims["iat"] == 3600
    assert "x5c" not in unverified_header(assertion)

    client = session(issuer, "authlib-pkjwt", key, token_endpoint_auth_method=PrivateKeyJWT.name)
    client.register_client_auth_method(auth)
    assert_service_token(fetch(client, issuer), "authlib-pkjwt")
    # A second request signs a new assertion (a new jti): accepted again.
    assert_service_token(fetch(client, issuer), "authlib-pkjwt")


@pytest.mark.interop("Authlib", "private_key_jwt, registered Ed25519 key, RFC 9864 alg Ed25519")
def test_private_key_jwt_with_the_rfc9864_algorithm_name(issuer):
    key = OKPKey.import_key(issuer.private_keys["authlib-ed"])
    auth = PrivateKeyJWT(issuer.token_endpoint, alg="Ed25519")
    client = session(issuer, "authlib-ed", key, token_endpoint_auth_method=PrivateKeyJWT.name)
    client.register_client_auth_method(auth)
    assert_service_token(fetch(client, issuer), "authlib-ed")


@pytest.mark.interop("Authlib", "private_key_jwt signed by an unregistered key is refused")
def test_private_key_jwt_with_another_key_is_refused(issuer):
    from authlib.integrations.base_client import OAuthError

    key = ECKey.generate_key("P-256")
    auth = PrivateKeyJWT(issuer.token_endpoint, alg="ES256")
    client = session(issuer, "authlib-pkjwt", key, token_endpoint_auth_method=PrivateKeyJWT.name)
    client.register_client_auth_method(auth)
    with pytest.raises(OAuthError) as refused:
        fetch(client, issuer)
    assert refused.value.error == "invalid_client"


@pytest.mark.interop("Authlib", "tls_client_auth (RFC 8705), certificate-bound token")
def test_tls_client_auth(issuer):
    client = session(issuer, "ads", token_endpoint_auth_method="none")
    client.cert = issuer.certificate("ads")
    token = fetch(client, issuer)
    claims = unverified_claims(token["access_token"])
    assert claims["client_id"] == "ads"
    assert "x5t#S256" in claims["cnf"]  # bound to the certificate it was fetched with


@pytest.mark.interop(
    "Authlib", "RFC 6750 challenges at a service endpoint (invalid_token, schemes)"
)
def test_rfc6750_challenges_at_a_service_endpoint(issuer):
    client = session(
        issuer,
        "authlib",
        issuer.secrets["authlib"],
        token_endpoint_auth_method="client_secret_basic",
    )
    token = fetch(client, issuer)
    previews = f"{issuer.base}/api/v1/users/previews?ids=1"
    assert client.get(previews, timeout=10).status_code == 200  # Authlib sends it as Bearer

    plain = requests.Session()
    plain.trust_env = False
    plain.verify = issuer.ca
    header, payload, _ = token["access_token"].split(".")
    refused = plain.get(previews, headers={"Authorization": "Bearer not.a.token"}, timeout=10)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer realm=")
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    forged = plain.get(
        previews, headers={"Authorization": f"Bearer {header}.{payload}.AAAA"}, timeout=10
    )
    assert 'error="invalid_token"' in forged.headers["WWW-Authenticate"]
    anonymous = plain.get(previews, timeout=10)
    assert anonymous.status_code == 401
    schemes = anonymous.headers["WWW-Authenticate"]
    for scheme in ("ServiceJWT realm=", "Bearer realm=", "Mutual-TLS realm="):
        assert scheme in schemes, schemes
