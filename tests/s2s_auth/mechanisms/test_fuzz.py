"""Property-based fuzzing of every authentication class through the Django test client.

Random bytes and mutations of valid credentials — service JWTs, access tokens, API
keys, client certificates (PEM in ``SSL_CLIENT_CERT``), nginx and Envoy proxy headers
from a trusted proxy, RFC 9421 signatures — must never cause a 500 and must never be
accepted. The one exception, as in test_httpsig: a mutation that decodes to the
*identical* credential (whitespace the server strips, a PEM or Structured-Field
encoding of the same bytes) may be accepted; that is checked, not assumed.
"""

from __future__ import annotations

import base64
import os
import time
from urllib.parse import quote

import http_sf
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2s_auth.client.auth import ServiceCredentials, signature_auth
from s2s_auth.core import jose as tokens
from s2s_auth.core.access_tokens import verified_token_cache
from s2s_auth.credentials.apikeys import create_key
from s2s_auth.credentials.certificates import register_certificate
from s2s_auth.credentials.principals import ensure_principal
from tests.s2s_auth.mechanisms.test_access_token import JWKSServer, Keys

AUDIENCE = "spiffe://fleamarket.local/service/users"
ISSUER = "https://issuer.test"
NAME = "fuzzer"
SPIFFE = f"spiffe://fleamarket.local/service/{NAME}"

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "75")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: Header values as a server would see them (latin-1 decoded bytes).
random_header = st.one_of(
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.text(alphabet=st.characters(codec="ascii"), max_size=300),
)


# ----------------------------------------------------------------------------- set-up


@pytest.fixture(scope="module")
def keys():
    k = Keys()
    k.new("k1")
    return k


@pytest.fixture(scope="module")
def jwks(keys):
    server = JWKSServer()
    server.jwks = {"keys": [keys.jwk("k1")]}
    yield server
    server.stop()


@pytest.fixture
def conf(ca, settings, jwks):
    def apply(**extra):
        settings.S2S_AUTH = {
            "SERVICE_NAME": "users",
            "TRUST_DOMAIN": "fleamarket.local",
            "PKI_DIR": str(ca.directory),
            "ACCESS_TOKEN_ISSUER": ISSUER,
            "JWKS_URL": jwks.url,
            "HTTPSIG_ORIGIN": "http://testserver",
            **extra,
        }
        verified_token_cache().clear()

    apply()
    return apply


@pytest.fixture
def creds(ca, conf, db):
    issued = ca.issue(NAME)
    principal, _ = ensure_principal(NAME, ["test:read"])
    register_certificate(principal, issued.cert_path.read_text())
    return ServiceCredentials.from_files(issued.cert_path, issued.key_path)


def mutate(data, value: str) -> str:
    """One random edit of ``value``: replace, insert or delete a character, or truncate."""
    kind = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
    index = data.draw(st.integers(0, len(value) - 1))
    char = data.draw(st.characters(codec="ascii"))
    if kind == "replace":
        return value[:index] + char + value[index + 1 :]
    if kind == "insert":
        return value[:index] + char + value[index:]
    if kind == "delete":
        return value[:index] + value[index + 1 :]
    return value[:index]


def assert_not_500(response):
    assert response.status_code < 500, response.content[:500]


def _jwt_parts(token: str) -> list[bytes] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        return [base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in parts]
    except ValueError:
        return None


def same_token(original: str, mutated: str) -> bool:
    """The mutated token is the original one as the server reads it."""
    candidate = mutated.strip()
    return candidate == original or _jwt_parts(candidate) == _jwt_parts(original)


# --------------------------------------------- the originals pass (so refusals mean something)


def test_the_unmutated_credentials_are_accepted(client, creds, keys, conf):
    from s2s_auth.models import ServicePrincipal

    pem = creds.cert_path.read_text()
    _, api_key = create_key(ServicePrincipal.objects.get(name=NAME), expires_days=1)
    prepared = signed_request(creds)
    responses = [
        client.get("/jwt/scoped", HTTP_AUTHORIZATION=f"ServiceJWT {service_jwt(creds)}"),
        client.get("/tokens-test/at/scoped", HTTP_AUTHORIZATION=f"Bearer {access_token(keys)}"),
        client.get("/tokens-test/apikey/scoped", HTTP_AUTHORIZATION=f"ApiKey {api_key}"),
        client.get("/mtls/scoped", SSL_CLIENT_CERT=pem),
        client.post(
            prepared.path_url,
            data=prepared.body,
            content_type="application/json",
            **{
                "HTTP_" + k.upper().replace("-", "_"): prepared.headers[k]
                for k in ("Signature-Input", "Signature", "Content-Digest")
            },
        ),
    ]
    conf(TRUSTED_PROXIES=["127.0.0.1"], PROXY_CERT_HEADER="nginx")
    responses.append(client.get("/mtls/scoped", HTTP_X_SSL_CLIENT_CERT=quote(pem, safe="")))
    conf(TRUSTED_PROXIES=["127.0.0.1"], PROXY_CERT_HEADER="envoy")
    responses.append(
        client.get("/mtls/scoped", HTTP_X_FORWARDED_CLIENT_CERT=f'Cert="{quote(pem, safe="")}"')
    )
    assert [r.status_code for r in responses] == [200] * len(responses), [
        r.content[:200] for r in responses
    ]


# ----------------------------------------------------------------- random credentials


@pytest.mark.parametrize(
    ("path", "scheme"),
    [
        ("/any/scoped", "ServiceJWT"),
        ("/jwt/scoped", "ServiceJWT"),
        ("/tokens-test/at/scoped", "Bearer"),
        ("/tokens-test/apikey/scoped", "ApiKey"),
    ],
)
@FUZZ
@given(value=random_header)
def test_random_authorization_values_are_refused(client, creds, path, scheme, value):
    response = client.get(path, HTTP_AUTHORIZATION=f"{scheme} {value}")
    assert_not_500(response)
    assert response.status_code in (401, 403)


@FUZZ
@given(signature_input=random_header, signature=random_header, digest=random_header)
def test_random_signature_headers_are_refused(client, creds, signature_input, signature, digest):
    response = client.get(
        "/sig/scoped",
        HTTP_SIGNATURE_INPUT=signature_input,
        HTTP_SIGNATURE=signature,
        HTTP_CONTENT_DIGEST=digest,
    )
    assert_not_500(response)
    assert response.status_code in (401, 403)


@FUZZ
@given(pem=random_header)
def test_random_client_certificates_are_refused(client, creds, pem):
    response = client.get("/mtls/scoped", SSL_CLIENT_CERT=pem)
    assert_not_500(response)
    assert response.status_code in (401, 403)


# ------------------------------------------------------------------ mutated credentials


def service_jwt(creds) -> str:
    now = int(time.time())
    claims = {
        "iss": SPIFFE,
        "sub": SPIFFE,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 30,
        "jti": tokens.new_jti(),
    }
    return tokens.sign(claims, creds.private_key, typ="s2s+jwt", headers={"x5c": creds.x5c})


@FUZZ
@given(data=st.data())
def test_mutated_service_jwts_are_refused(client, creds, data):
    token = service_jwt(creds)  # fresh jti: the original itself would be accepted
    mutated = mutate(data, token)
    response = client.get("/jwt/scoped", HTTP_AUTHORIZATION=f"ServiceJWT {mutated}")
    assert_not_500(response)
    if response.status_code == 200:
        assert same_token(token, mutated), (token, mutated)
    else:
        assert response.status_code in (401, 403)


def access_token(keys) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": SPIFFE,
        "aud": AUDIENCE,
        "client_id": NAME,
        "iat": now,
        "exp": now + 300,
        "jti": tokens.new_jti(),
        "scope": "test:read",
    }
    return tokens.sign(claims, keys.private["k1"], kid="k1", typ="at+jwt")


@FUZZ
@given(data=st.data())
def test_mutated_access_tokens_are_refused(client, creds, keys, data):
    token = access_token(keys)
    mutated = mutate(data, token)
    response = client.get("/tokens-test/at/scoped", HTTP_AUTHORIZATION=f"Bearer {mutated}")
    assert_not_500(response)
    if response.status_code == 200:
        assert mutated.split() == [token] or same_token(token, mutated), (token, mutated)
    else:
        assert response.status_code in (401, 403)


@FUZZ
@given(data=st.data())
def test_mutated_api_keys_are_refused(client, creds, data):
    from s2s_auth.models import ServicePrincipal

    _, key = create_key(ServicePrincipal.objects.get(name=NAME), expires_days=1)
    mutated = mutate(data, key)
    response = client.get("/tokens-test/apikey/scoped", HTTP_AUTHORIZATION=f"ApiKey {mutated}")
    assert_not_500(response)
    if response.status_code == 200:
        assert mutated.split() == [key], (key, mutated)
    else:
        assert response.status_code in (401, 403)


def _leaf_der(pem: str) -> tuple[bytes, bytes] | None:
    """What the issuer signed and its signature: an accepted mutation must keep both.

    Not the raw DER: a flipped "unused bits" octet of the signature BIT STRING leaves
    the signed content and the signature value as they were, and the verifier (rightly)
    still accepts the certificate.
    """
    try:
        chain = x509.load_pem_x509_certificates(pem.encode("latin-1"))
        return (chain[0].tbs_certificate_bytes, chain[0].signature) if chain else None
    except (ValueError, UnicodeError):
        return None


def _der_mutation(data, pem: str) -> str:
    """The leaf's DER with one byte changed, re-encoded as PEM, plus the rest of the chain."""
    chain = x509.load_pem_x509_certificates(pem.encode())
    der = bytearray(chain[0].public_bytes(serialization.Encoding.DER))
    index = data.draw(st.integers(0, len(der) - 1))
    der[index] ^= data.draw(st.integers(1, 255))
    body = base64.encodebytes(bytes(der)).decode()
    rest = pem.split("-----END CERTIFICATE-----", 1)[1]
    return f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----{rest}"


@FUZZ
@given(data=st.data())
def test_mutated_client_certificates_are_refused(client, creds, data):
    pem = creds.cert_path.read_text()
    mutated = _der_mutation(data, pem) if data.draw(st.booleans()) else mutate(data, pem)
    response = client.get("/mtls/scoped", SSL_CLIENT_CERT=mutated)
    assert_not_500(response)
    if response.status_code == 200:
        assert _leaf_der(mutated) == _leaf_der(pem)
    else:
        assert response.status_code in (401, 403)


# ------------------------------------------------------------------ proxy headers


@FUZZ
@given(data=st.data())
def test_nginx_header_from_a_trusted_proxy_fuzzed(client, creds, conf, data):
    conf(TRUSTED_PROXIES=["127.0.0.1"], PROXY_CERT_HEADER="nginx")
    pem = creds.cert_path.read_text()
    if data.draw(st.booleans()):
        value = data.draw(random_header)
        original = None
    else:
        choice = data.draw(st.sampled_from(["escaped", "der"]))
        mutated_pem = _der_mutation(data, pem) if choice == "der" else pem
        value = quote(mutated_pem, safe="")
        if choice == "escaped":
            value = mutate(data, value)
        original = pem
    response = client.get("/mtls/scoped", HTTP_X_SSL_CLIENT_CERT=value, REMOTE_ADDR="127.0.0.1")
    assert_not_500(response)
    if response.status_code == 200:
        from urllib.parse import unquote

        assert original is not None and _leaf_der(unquote(value)) == _leaf_der(original)
    else:
        assert response.status_code in (401, 403)


@FUZZ
@given(data=st.data())
def test_envoy_xfcc_from_a_trusted_proxy_fuzzed(client, creds, conf, data):
    from s2s_auth.tls.proxy_headers import ProxyHeaderError, pem_from_xfcc

    conf(TRUSTED_PROXIES=["127.0.0.1"], PROXY_CERT_HEADER="envoy")
    pem = creds.cert_path.read_text()
    valid = f'By=spiffe://fleamarket.local/service/users;Cert="{quote(pem, safe="")}";URI={SPIFFE}'
    kind = data.draw(st.sampled_from(["random", "mutated", "der", "structured"]))
    if kind == "random":
        value = data.draw(random_header)
    elif kind == "mutated":
        value = mutate(data, valid)
    elif kind == "der":
        value = f'Cert="{quote(_der_mutation(data, pem), safe="")}"'
    else:
        pieces = st.sampled_from([";", ",", '"', "=", "Cert", "Chain", "\\", "%", " ", "By"])
        value = "".join(data.draw(st.lists(pieces, max_size=30)))
    response = client.get(
        "/mtls/scoped", HTTP_X_FORWARDED_CLIENT_CERT=value, REMOTE_ADDR="127.0.0.1"
    )
    assert_not_500(response)
    if response.status_code == 200:
        try:
            presented = pem_from_xfcc(value)
        except ProxyHeaderError:  # pragma: no cover - it was accepted, so it parsed
            presented = ""
        assert _leaf_der(presented) == _leaf_der(pem), value
    else:
        assert response.status_code in (401, 403)


# ------------------------------------------------------------------ RFC 9421 signatures


def signed_request(creds) -> requests.PreparedRequest:
    prepared = requests.Request(
        "POST",
        "http://testserver/sig/scoped?page=1",
        data=b'{"x": 1}',
        headers={"Content-Type": "application/json"},
    ).prepare()
    return signature_auth(creds)(prepared)


def _structured(headers: dict[str, str]) -> tuple:
    return tuple(
        http_sf.parse(headers[name].encode("latin-1"), tltype="dictionary")
        for name in ("Signature-Input", "Signature", "Content-Digest")
    )


@FUZZ
@given(data=st.data())
def test_mutated_signatures_are_refused(client, creds, data):
    prepared = signed_request(creds)  # fresh nonce: the original would be accepted
    headers = {
        name: prepared.headers[name] for name in ("Signature-Input", "Signature", "Content-Digest")
    }
    name = data.draw(st.sampled_from(sorted(headers)))
    mutated = dict(headers, **{name: mutate(data, headers[name])})
    response = client.post(
        prepared.path_url,
        data=prepared.body,
        content_type="application/json",
        **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in mutated.items()},
    )
    assert_not_500(response)
    if response.status_code == 200:
        # Only another encoding of the same structured values (e.g. whitespace, unused
        # base64 bits) may pass: what was verified is the original.
        assert _structured(mutated) == _structured(headers), (headers, mutated)
    else:
        assert response.status_code in (401, 403)
