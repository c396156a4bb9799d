"""AccessTokenAuthentication / EndUserTokenAuthentication and the JWKS cache.

The issuer's JWKS is served over real HTTP(S) on loopback by a fixture server that
counts its requests and can fail or stop; tokens are minted with s2s_auth.core.jose.sign.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from s2s_auth.core.access_tokens import verified_token_cache
from s2s_auth.core.jose import TokenError, new_jti, sign
from s2s_auth.core.jwk import public_jwk
from s2s_auth.core.jwks import JWKSCache, JWKSUnavailable, clear_jwks_caches
from s2s_auth.credentials.cache import invalidate
from s2s_auth.credentials.principals import ensure_principal
from s2s_auth.models import ServicePrincipal

ISSUER = "https://issuer.test"
AUDIENCE = "spiffe://fleamarket.local/service/users"
CALLER = "spiffe://fleamarket.local/service/caller"
#: END_USER_AUDIENCE by default: the trust domain's own SPIFFE ID.
END_USERS = "spiffe://fleamarket.local"


class JWKSServer:
    """A JWKS endpoint on loopback: ``jwks`` is served, ``status`` forced, ``hits`` counted."""

    def __init__(self, tls: tuple[str, str] | None = None):
        self.jwks: dict = {"keys": []}
        self.status = 200
        self.hits = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with server._lock:
                    server.hits += 1
                    status, body = server.status, json.dumps(server.jwks).encode()
                if status != 200:
                    body = b'{"error": "boom"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.running = True

    def stop(self):
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.running = False


class Keys:
    def __init__(self):
        self.private: dict[str, ec.EllipticCurvePrivateKey] = {}

    def new(self, kid: str) -> ec.EllipticCurvePrivateKey:
        self.private[kid] = ec.generate_private_key(ec.SECP256R1())
        return self.private[kid]

    def jwk(self, kid: str, **extra) -> dict:
        return {**public_jwk(self.private[kid].public_key(), kid), **extra}


@pytest.fixture
def keys():
    k = Keys()
    k.new("k1")
    return k


@pytest.fixture
def jwks_server(keys):
    server = JWKSServer()
    server.jwks = {"keys": [keys.jwk("k1")]}
    yield server
    server.stop()


@pytest.fixture
def conf(settings, ca, jwks_server):
    def apply(**extra):
        settings.S2S_AUTH = {
            "SERVICE_NAME": "users",
            "TRUST_DOMAIN": "fleamarket.local",
            "PKI_DIR": str(ca.directory),
            "ACCESS_TOKEN_ISSUER": ISSUER,
            "JWKS_URL": jwks_server.url,
            **extra,
        }
        clear_jwks_caches()
        verified_token_cache().clear()

    apply()
    yield apply
    clear_jwks_caches()
    verified_token_cache().clear()


@pytest.fixture
def caller(conf, db):
    principal, _ = ensure_principal("caller", ["test:read", "test:write"])
    return principal


def mint(keys, *, kid="k1", key=None, typ="at+jwt", drop=(), **claims):
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "sub": CALLER,
        "aud": AUDIENCE,
        "client_id": "caller",
        "iat": now,
        "exp": now + 300,
        "jti": new_jti(),
        "scope": "test:read other:thing",
        **claims,
    }
    for name in drop:
        body.pop(name)
    # An unknown kid gets signed with k1: the signature would verify, the kid must not.
    return sign(body, key or keys.private.get(kid) or keys.private["k1"], kid=kid, typ=typ)


def call(client, token, path="/tokens-test/at/scoped", scheme="Bearer", **extra):
    return client.get(path, HTTP_AUTHORIZATION=f"{scheme} {token}", **extra)


def x5t(pem_path) -> str:
    from cryptography import x509

    der = x509.load_pem_x509_certificates(pem_path.read_bytes())[0].public_bytes(
        serialization.Encoding.DER
    )
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


# ------------------------------------------------------------------------- accepted


def test_valid_token_maps_to_principal_with_intersected_scopes(client, caller, keys):
    response = call(client, mint(keys))
    assert response.status_code == 200, response.content
    assert response.json() == {
        "name": "caller",
        "spiffe_id": CALLER,
        "mechanism": "access_token",
        "scopes": ["test:read"],  # not other:thing (not granted), not test:write (not in token)
        "auth": "AccessToken",
    }


def test_token_scopes_limit_the_principal(client, caller, keys):
    response = call(client, mint(keys, scope="test:write"))
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    response = call(client, mint(keys, drop=("scope",)), path="/tokens-test/at/any")
    assert response.status_code == 200
    assert response.json()["scopes"] == []


def test_principal_losing_a_scope_loses_it_for_existing_tokens(client, caller, keys):
    token = mint(keys)
    assert call(client, token).status_code == 200
    ServicePrincipal.objects.filter(pk=caller.pk).update(scopes="test:write")
    invalidate()  # an UPDATE sends no signal (principal cache)
    assert call(client, token).json()["error"] == "insufficient_scope"


def test_request_auth_is_the_verified_token(client, caller, keys):
    token = mint(keys, jti="the-jti")
    assert call(client, token, "/tokens-test/at/any").json()["jti"] == "the-jti"


def test_configured_audience_replaces_the_spiffe_id(client, caller, keys, conf):
    conf(ACCESS_TOKEN_AUDIENCE=["https://users.example", "other"])
    assert call(client, mint(keys, aud="https://users.example")).status_code == 200
    assert call(client, mint(keys)).json()["error"] == "wrong_audience"


# ------------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("claims", "status", "code"),
    [
        ({"iss": "https://evil.test"}, 403, "wrong_issuer"),
        ({"aud": "spiffe://fleamarket.local/service/ads"}, 403, "wrong_audience"),
        ({"exp": int(time.time()) - 120, "iat": int(time.time()) - 400}, 401, "expired"),
        ({"iat": int(time.time()) + 600, "exp": int(time.time()) + 900}, 403, "issued_in_future"),
        ({"client_id": "someone-else"}, 403, "invalid_claim"),
        ({"scope": ["test:read"]}, 403, "invalid_claim"),
        (
            {"sub": "spiffe://fleamarket.local/service/nobody", "client_id": "nobody"},
            403,
            "unknown_principal",
        ),
        ({"sub": "spiffe://other.domain/service/caller"}, 403, "not_a_service_token"),
        ({"cnf": {"jkt": "abc"}}, 403, "unsupported_token_binding"),
    ],
)
def test_bad_claims_are_refused(client, caller, keys, claims, status, code):
    response = call(client, mint(keys, **claims))
    assert response.status_code == status
    assert response.json()["error"] == code


def test_missing_jti_is_refused(client, caller, keys):
    response = call(client, mint(keys, drop=("jti",)))
    assert (response.status_code, response.json()["error"]) == (403, "missing_claim")


def test_missing_client_id_is_refused(client, caller, keys):
    """RFC 9068 §2.2: client_id is a required claim of an access token."""
    response = call(client, mint(keys, drop=("client_id",)))
    assert (response.status_code, response.json()["error"]) == (403, "missing_claim")
    response = call(client, mint(keys, client_id=""))
    assert (response.status_code, response.json()["error"]) == (403, "invalid_claim")


def test_plain_jwt_type_is_refused(client, caller, keys):
    response = call(client, mint(keys, typ="JWT"))
    assert (response.status_code, response.json()["error"]) == (403, "wrong_type")
    response = call(client, mint(keys, typ=None))
    assert (response.status_code, response.json()["error"]) == (403, "wrong_type")


def test_signature_by_another_key_with_a_known_kid_is_refused(client, caller, keys):
    forged = mint(keys, key=ec.generate_private_key(ec.SECP256R1()))
    response = call(client, forged)
    assert (response.status_code, response.json()["error"]) == (403, "bad_signature")


def test_expired_is_401_with_rfc6750_challenge(client, caller, keys):
    now = int(time.time())
    response = call(client, mint(keys, iat=now - 600, exp=now - 60))
    assert response.status_code == 401
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{AUDIENCE}"')
    assert 'error="invalid_token"' in challenge
    assert 'error_description="expired' in challenge


@pytest.mark.parametrize(
    ("header", "status", "code"),
    [
        (None, 401, "not_authenticated"),
        ("DPoP abc.def.ghi", 401, "not_authenticated"),
        ("Basic dXNlcjpwYXNz", 401, "not_authenticated"),
        ("Bearer", 401, "missing_token"),
        ("Bearer a b", 401, "malformed_token"),
        ("Bearer not-a-jwt", 401, "malformed_token"),
        ("Bearer " + "a" * 10000, 401, "token_too_large"),
        ("Bearer \u00e9t\u00e9.a.b", 401, "malformed_token"),
    ],
)
def test_missing_or_unreadable_token_is_401(client, caller, header, status, code):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = client.get("/tokens-test/at/scoped", **extra)
    assert response.status_code == status
    assert response.json()["error"] == code
    assert response["WWW-Authenticate"].startswith("Bearer realm=")


def test_disabled_principal_is_403(client, caller, keys):
    ServicePrincipal.objects.filter(pk=caller.pk).update(enabled=False)
    invalidate()  # an UPDATE sends no signal (principal cache)
    response = call(client, mint(keys))
    assert (response.status_code, response.json()["error"]) == (403, "principal_disabled")


def test_raw_token_never_logged(client, caller, keys, caplog):
    caplog.set_level(logging.DEBUG)
    good, bad = mint(keys), mint(keys, iss="https://evil.test")
    assert call(client, good).status_code == 200
    assert call(client, bad).status_code == 403
    assert "s2s accepted mechanism=access_token principal=" + CALLER in caplog.text
    for token in (good, bad):
        assert token not in caplog.text
        assert token.split(".")[2] not in caplog.text


# ------------------------------------------------------------------ end-user tokens


def test_user_token_at_a_service_endpoint_is_refused(client, caller, keys):
    user_token = mint(keys, sub="42", client_id="web", scope="ads:write")
    response = call(client, user_token)
    assert (response.status_code, response.json()["error"]) == (403, "not_a_service_token")
    # Normally a user token is not even for this audience.
    response = call(client, mint(keys, sub="42", aud=END_USERS))
    assert (response.status_code, response.json()["error"]) == (403, "wrong_audience")


def test_end_user_token_authentication(client, caller, keys):
    token = mint(keys, sub="42", aud=END_USERS, preferred_username="alice", scope="ads:write")
    response = call(client, token, "/tokens-test/user/me")
    assert response.status_code == 200
    assert response.json() == {"id": "42", "username": "alice", "scopes": ["ads:write"]}


def test_service_token_at_an_end_user_endpoint_is_refused(client, caller, keys, settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "END_USER_AUDIENCE": [END_USERS, AUDIENCE]}
    response = call(client, mint(keys), "/tokens-test/user/me")
    assert (response.status_code, response.json()["error"]) == (403, "not_an_end_user_token")


def test_user_token_for_another_audience_is_refused(client, caller, keys):
    response = call(client, mint(keys, sub="42", aud="elsewhere"), "/tokens-test/user/me")
    assert (response.status_code, response.json()["error"]) == (403, "wrong_audience")


# ------------------------------------------------------------------ certificate binding


@pytest.fixture
def bound(ca, caller, keys):
    issued = ca.issue("caller")
    other = ca.issue("intruder")
    ensure_principal("intruder", ["test:read"])
    token = mint(keys, cnf={"x5t#S256": x5t(issued.cert_path)})
    return token, issued.cert_path.read_text(), other.cert_path.read_text()


def test_bound_token_with_its_certificate_is_accepted(client, bound):
    token, pem, _ = bound
    response = call(client, token, SSL_CLIENT_CERT=pem)
    assert response.status_code == 200
    assert response.json()["name"] == "caller"


def test_bound_token_without_a_certificate_is_401(client, bound):
    token, _, _ = bound
    response = call(client, token)
    assert (response.status_code, response.json()["error"]) == (401, "certificate_required")
    assert "invalid_token" not in response["WWW-Authenticate"]


def test_bound_token_with_another_certificate_is_403(client, bound):
    token, _, other_pem = bound
    response = call(client, token, SSL_CLIENT_CERT=other_pem)
    assert (response.status_code, response.json()["error"]) == (
        403,
        "certificate_binding_mismatch",
    )


def test_bound_token_with_an_untrusted_certificate_is_403(client, bound, rogue_ca):
    token, _, _ = bound
    pem = rogue_ca.issue("caller").cert_path.read_text()
    response = call(client, token, SSL_CLIENT_CERT=pem)
    assert (response.status_code, response.json()["error"]) == (403, "untrusted_chain")


def test_bound_token_stays_bound_on_a_cache_hit(client, bound):
    token, pem, other_pem = bound
    assert call(client, token, SSL_CLIENT_CERT=pem).status_code == 200
    hits = verified_token_cache().hits
    assert call(client, token, SSL_CLIENT_CERT=other_pem).status_code == 403
    assert call(client, token).status_code == 401
    assert verified_token_cache().hits == hits + 2


# ------------------------------------------------------------------ verified-token cache


def test_cache_hit_still_checks_the_principal(client, caller, keys, jwks_server):
    token = mint(keys)
    assert call(client, token).status_code == 200
    hits = verified_token_cache().hits
    jwks_server.stop()  # a cache hit needs no key
    assert call(client, token).status_code == 200
    assert verified_token_cache().hits == hits + 1
    ServicePrincipal.objects.filter(pk=caller.pk).update(enabled=False)
    invalidate()  # an UPDATE sends no signal (principal cache)
    response = call(client, token)
    assert (response.status_code, response.json()["error"]) == (403, "principal_disabled")
    assert verified_token_cache().hits == hits + 2


def test_cache_can_be_turned_off(client, caller, keys, conf):
    conf(CACHE_VERIFIED_TOKENS=False)
    token = mint(keys)
    assert call(client, token).status_code == 200
    assert call(client, token).status_code == 200
    assert verified_token_cache().hits == 0
    assert len(verified_token_cache()) == 0


def test_cache_does_not_outlive_the_token(client, caller, keys, conf):
    conf(CLOCK_SKEW=0)
    now = int(time.time())
    token = mint(keys, iat=now, exp=now + 2)
    assert call(client, token).status_code == 200
    time.sleep(2.1)
    response = call(client, token)
    assert (response.status_code, response.json()["error"]) == (401, "expired")


# ------------------------------------------------------------------------ the JWKS


def test_keys_are_fetched_once_not_per_request(client, caller, keys, jwks_server):
    for _ in range(5):
        assert call(client, mint(keys)).status_code == 200
    assert jwks_server.hits == 1


def test_unknown_kid_triggers_one_refetch(client, caller, keys, jwks_server, conf):
    conf(JWKS_MIN_REFETCH_SECONDS=0.3)
    assert call(client, mint(keys)).status_code == 200
    assert jwks_server.hits == 1
    time.sleep(0.35)
    keys.new("k2")  # the issuer rotates: k2 is published next to k1
    jwks_server.jwks = {"keys": [keys.jwk("k1"), keys.jwk("k2")]}
    assert call(client, mint(keys, kid="k2")).status_code == 200
    assert jwks_server.hits == 2
    assert call(client, mint(keys, kid="k2")).status_code == 200
    assert jwks_server.hits == 2


def test_key_rotated_out_is_refused(client, caller, keys, jwks_server, conf):
    conf(JWKS_MIN_REFETCH_SECONDS=0.3)
    keys.new("old")
    token = mint(keys, kid="old")  # signed with a key the JWKS no longer lists
    assert call(client, mint(keys)).status_code == 200
    time.sleep(0.35)
    response = call(client, token)
    assert response.status_code == 401
    assert response.json()["error"] == "unknown_key"
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert jwks_server.hits == 2  # looked once more, did not find it


def test_random_kid_flood_refetches_at_most_once_per_interval(
    client, caller, keys, jwks_server, conf
):
    from s2s_auth.core.jwks import jwks_cache

    conf(JWKS_MIN_REFETCH_SECONDS=0.5)
    now = [1000.0]
    jwks_cache()._clock = lambda: now[0]  # the cache's clock seam: no sleeping, no races
    assert call(client, mint(keys)).status_code == 200
    now[0] += 0.6
    for _ in range(30):
        forged = mint(keys, kid=secrets.token_hex(8))
        assert call(client, forged).json()["error"] == "unknown_key"
    assert jwks_server.hits == 2
    now[0] += 0.6
    for _ in range(10):
        call(client, mint(keys, kid=secrets.token_hex(8)))
    assert jwks_server.hits == 3
    assert call(client, mint(keys)).status_code == 200


def test_concurrent_unknown_kids_cause_one_fetch(keys, jwks_server):
    cache = JWKSCache(jwks_server.url, min_refetch_seconds=60)
    cache.keys()
    assert jwks_server.hits == 1
    cache._attempted_at = -1e9  # as if the last fetch were long ago
    errors = []

    def flood():
        for _ in range(20):
            try:
                cache.key_for(secrets.token_hex(8))
            except TokenError as exc:
                errors.append(exc.code)

    threads = [threading.Thread(target=flood) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == ["unknown_key"] * 160
    assert jwks_server.hits == 2


def test_issuer_down_with_keys_cached_still_works(client, caller, keys, jwks_server, conf):
    conf(JWKS_CACHE_SECONDS=0.2, JWKS_MIN_REFETCH_SECONDS=0.2)
    assert call(client, mint(keys)).status_code == 200
    jwks_server.status = 500
    time.sleep(0.25)  # the keys are stale now: a refresh is attempted and fails
    assert call(client, mint(keys)).status_code == 200
    assert jwks_server.hits == 2
    jwks_server.stop()
    time.sleep(0.25)
    assert call(client, mint(keys)).status_code == 200
    response = call(client, mint(keys, kid="nope"))
    assert (response.status_code, response.json()["error"]) == (401, "unknown_key")


@pytest.mark.parametrize("failure", ["stopped", "500", "private_key_in_set", "garbage"])
def test_issuer_never_reached_is_a_clean_503(client, caller, keys, jwks_server, failure):
    if failure == "stopped":
        jwks_server.stop()
    elif failure == "500":
        jwks_server.status = 500
    elif failure == "private_key_in_set":
        private = keys.private["k1"].private_numbers()
        d = base64.urlsafe_b64encode(private.private_value.to_bytes(32, "big")).rstrip(b"=")
        jwks_server.jwks = {"keys": [keys.jwk("k1", d=d.decode())]}
    else:
        jwks_server.jwks = {"no": "keys"}
    response = call(client, mint(keys))
    assert response.status_code == 503
    assert response.json()["error"] == "jwks_unavailable"
    assert set(response.json()) == {"error", "detail"}
    assert int(response["Retry-After"]) >= 1


def test_issuer_never_reached_is_not_hammered(client, caller, keys, jwks_server, monkeypatch):
    # The backoff with no keys held starts at 0.25 s: longer here, so that a slow
    # machine taking that long for ten calls does not see a legitimate second try.
    monkeypatch.setattr("s2s_auth.core.jwks.FIRST_RETRY_SECONDS", 30.0)
    jwks_server.status = 500
    for _ in range(10):
        assert call(client, mint(keys)).status_code == 503
    assert jwks_server.hits == 1


def test_issuer_back_after_never_reached(client, caller, keys, jwks_server, conf):
    conf(JWKS_MIN_REFETCH_SECONDS=0.2)
    jwks_server.status = 500
    assert call(client, mint(keys)).status_code == 503
    jwks_server.status = 200
    time.sleep(0.25)
    assert call(client, mint(keys)).status_code == 200


def test_encryption_key_in_the_set_is_not_used(client, caller, keys, jwks_server):
    keys.new("enc1")
    jwks_server.jwks = {"keys": [keys.jwk("k1"), keys.jwk("enc1", use="enc")]}
    response = call(client, mint(keys, kid="enc1"))
    assert (response.status_code, response.json()["error"]) == (401, "unknown_key")
    assert call(client, mint(keys)).status_code == 200


def test_key_ops_without_verify_is_not_used(client, caller, keys, jwks_server):
    keys.new("wrap")
    jwks_server.jwks = {"keys": [keys.jwk("k1"), keys.jwk("wrap", key_ops=["wrapKey"])]}
    response = call(client, mint(keys, kid="wrap"))
    assert (response.status_code, response.json()["error"]) == (401, "unknown_key")


def test_https_jwks_is_verified_against_our_anchors(
    client, caller, keys, ca, rogue_ca, conf, monkeypatch
):
    issued = ca.issue("jwkshost")
    server = JWKSServer(tls=(str(issued.cert_path), str(issued.key_path)))
    rogue = rogue_ca.issue("jwkshost")
    impostor = JWKSServer(tls=(str(rogue.cert_path), str(rogue.key_path)))
    try:
        server.jwks = impostor.jwks = {"keys": [keys.jwk("k1")]}
        # The environment must not replace our anchors (trust_env off).
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(rogue_ca.ca_path))
        conf(JWKS_URL=server.url)
        assert call(client, mint(keys)).status_code == 200
        conf(JWKS_URL=impostor.url)
        assert call(client, mint(keys)).status_code == 503
        assert impostor.hits == 0  # the TLS handshake failed before any request
    finally:
        server.stop()
        impostor.stop()


def test_jwks_cache_unit_errors(jwks_server):
    jwks_server.stop()
    cache = JWKSCache(jwks_server.url, min_refetch_seconds=60)
    with pytest.raises(JWKSUnavailable) as info:
        cache.key_for("k1")
    assert info.value.code == "jwks_unavailable"
    assert cache.fetch_count == 1
    with pytest.raises(JWKSUnavailable):
        cache.keys()
    assert cache.fetch_count == 1
    with pytest.raises(ValueError):
        JWKSCache("file:///etc/passwd")


# --------------------------------------- RFC 6750 challenges at a ServiceAPIView


@pytest.fixture
def several(conf):
    """A ServiceAPIView (``/service/scoped``, scope test:read) with three mechanisms,
    the Bearer one not first: DRF alone would answer with ServiceJWT's challenge."""
    conf(MECHANISMS=["service_jwt", "access_token", "mtls"])


def test_a_bad_bearer_token_gets_a_bearer_invalid_token_challenge(client, caller, keys, several):
    now = int(time.time())
    response = call(client, mint(keys, iat=now - 600, exp=now - 60), path="/service/scoped")
    assert response.status_code == 401
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{AUDIENCE}", error="invalid_token"'), challenge
    assert "ServiceJWT" not in challenge


def test_a_refused_bearer_token_on_403_still_says_invalid_token(client, caller, keys, several):
    forged = mint(keys, key=ec.generate_private_key(ec.SECP256R1()))
    response = call(client, forged, path="/service/scoped")
    assert (response.status_code, response.json()["error"]) == (403, "bad_signature")
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_a_bearer_token_without_the_scope_gets_insufficient_scope(client, caller, keys, several):
    response = call(client, mint(keys, scope="other:thing"), path="/service/scoped")
    assert response.status_code == 403
    assert response["WWW-Authenticate"] == (
        f'Bearer realm="{AUDIENCE}", error="insufficient_scope", scope="test:read"'
    )


def test_no_credential_lists_every_accepted_scheme(client, caller, several):
    response = client.get("/service/scoped")
    assert response.status_code == 401
    challenge = response["WWW-Authenticate"]
    for scheme in ("ServiceJWT realm=", "Bearer realm=", "Mutual-TLS realm="):
        assert scheme in challenge, challenge
    assert "error=" not in challenge


def test_a_good_bearer_token_passes_the_service_view(client, caller, keys, several):
    response = call(client, mint(keys), path="/service/scoped")
    assert response.status_code == 200, response.content
    assert not response.has_header("WWW-Authenticate")


def test_the_subject_is_parsed_once_not_per_request(client, caller, keys, parsed_ids):
    token = mint(keys)
    assert call(client, token).status_code == 200  # verified and cached
    assert parsed_ids == [CALLER]
    response = call(client, mint(keys))  # another token of the same caller
    assert response.status_code == 200, response.content
    assert response.json()["scopes"] == ["test:read"]  # the token's ∩ the principal's
    assert parsed_ids == [CALLER]  # its service name is remembered
