"""Tests of s2s_auth.core.httpsig: RFC 9421 Appendix B vectors, round trips, each refusal code."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import http_sf
import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from django.http.request import HttpHeaders
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
)
from http_message_signatures.algorithms import (
    ECDSA_P256_SHA256,
    ED25519,
    HMAC_SHA256,
    RSA_PSS_SHA512,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2s_auth.client.auth import HTTPSignatureAuth
from s2s_auth.core import httpsig
from s2s_auth.core.httpsig import (
    REASON_CODES,
    MemoryNonceStore,
    SignatureError,
    SignatureVerifier,
    VerifiedSignature,
    algorithm_for_key,
    check_content_digest,
    content_digest,
    sign_request,
    target_uri,
)

VECTORS_PATH = Path(__file__).resolve().parents[2] / "vectors" / "rfc9421-appendix-b.json"
T0 = 1_700_000_000  # a fixed "now" for signing and verifying
URL = "https://users.fleamarket.local/api/v1/users/previews?ids=1,2"
BODY = b'{"ids": [1, 2]}'


# --------------------------------------------------------------------------- helpers


@dataclass
class Msg:
    """A request as the library reads it."""

    method: str
    url: str
    headers: dict
    body: bytes | None = None


@dataclass
class Resp:
    status_code: int
    headers: dict
    request: Msg | None = None


@dataclass
class Server:
    """A verifier with its key table and nonce store, as a receiving service has."""

    keys: dict = field(default_factory=dict)
    store: MemoryNonceStore = field(default_factory=MemoryNonceStore)

    def resolve(self, key_id):
        if key_id not in self.keys:
            raise SignatureError("unknown_key", f"no key {key_id!r}")
        return self.keys[key_id], None

    def verifier(self, **options) -> SignatureVerifier:
        options.setdefault("nonce_store", self.store)
        return SignatureVerifier(resolve_key=self.resolve, **options)


def code_of(call) -> str:
    with pytest.raises(SignatureError) as info:
        call()
    assert info.value.code in REASON_CODES
    return info.value.code


def signed(private_key, *, method="POST", url=URL, body=BODY, key_id="ads", **options):
    kwargs = {"data": body} if body is not None else {}
    request = requests.Request(method, url, **kwargs).prepare()
    options.setdefault("created", T0)
    return sign_request(request, key_id=key_id, private_key=private_key, **options)


def verify(verifier, request, *, method=None, url=None, headers=None, body=None, now=T0):
    return verifier.verify(
        method or request.method,
        url or request.url,
        dict(request.headers) if headers is None else headers,
        request.body if body is None else body,
        now=now,
    )


@pytest.fixture(params=["ec-p256", "ed25519"])
def keypair(request):
    if request.param == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def server(keypair) -> Server:
    return Server(keys={"ads": keypair.public_key()})


# --------------------------------------------------------------------------- RFC 9421 App. B


# Vendored in tests/vectors (see its README): a missing file fails collection.
_DATA = json.loads(VECTORS_PATH.read_text())
_VECTOR_IDS = [v["label"] for v in _DATA["vectors"]]
_LIB_ALGORITHMS = {
    "rsa-pss-sha512": RSA_PSS_SHA512,
    "ecdsa-p256-sha256": ECDSA_P256_SHA256,
    "hmac-sha256": HMAC_SHA256,
    "ed25519": ED25519,
}


@pytest.fixture(params=_VECTOR_IDS)
def vector(request):
    return next(v for v in _DATA["vectors"] if v["label"] == request.param)


def _vector_message(vec, *, with_signature: bool):
    req = _DATA["test_request"]
    request = Msg(req["method"], req["url"], dict(req["headers"]), req["body"].encode())
    message = request
    if vec["msg"] == "response":
        res = _DATA["test_response"]
        message = Resp(res["status"], dict(res["headers"]), request)
    if with_signature:
        message.headers["Signature-Input"] = f"{vec['label']}={vec['input']}"
        message.headers["Signature"] = f"{vec['label']}=:{vec['sig']}:"
    return message


def _vector_keys(vec):
    if vec["alg"] == "hmac-sha256":
        secret = base64.b64decode(_DATA["shared_secret_b64"])
        return secret, secret
    public = serialization.load_pem_public_key(_DATA["keys_public_pem"][vec["keyid"]].encode())
    private = None
    if vec["alg"] == "ed25519":
        private = serialization.load_pem_private_key(
            _DATA["ed25519_private_pem"].encode(), password=None
        )
    return public, private


def _parsed_input(vec):
    inner, params = http_sf.parse(f"{vec['label']}={vec['input']}".encode(), tltype="dictionary")[
        vec["label"]
    ]
    components = tuple(http_sf.ser((v, p)) if p else v for v, p in inner)
    return components, params


def test_vector_signature_base_is_reproduced_by_the_library(vector):
    message = _vector_message(vector, with_signature=False)
    components, params = _parsed_input(vector)
    signer = HTTPMessageSigner(signature_algorithm=_LIB_ALGORITHMS[vector["alg"]])
    prepared = signer.prepare(
        message,
        key_id=params["keyid"],
        created=dt.datetime.fromtimestamp(params["created"], dt.UTC),
        nonce=params.get("nonce"),
        tag=params.get("tag"),
        include_alg="alg" in params,
        covered_component_ids=components,
        use_existing_digest="Content-Digest" in message.headers,
        label=vector["label"],
    )
    assert prepared.signature_params == vector["input"]
    assert prepared.signature_base == vector["signature_base"].encode("ascii")


def test_vector_signature_verifies_with_the_given_key(vector):
    message = _vector_message(vector, with_signature=True)
    public, _ = _vector_keys(vector)
    verifier = HTTPMessageVerifier(
        signature_algorithm=_LIB_ALGORITHMS[vector["alg"]],
        key_resolver=MappingKeyResolver(public_keys={vector["keyid"]: public}, private_keys={}),
    )
    (result,) = verifier.verify(message, max_age=None)
    assert result.label == vector["label"]
    assert result.parameters["keyid"] == vector["keyid"]

    # ... and a changed message does not verify.
    message.headers["Signature"] = f"{vector['label']}=:{base64.b64encode(b'x' * 64).decode()}:"
    with pytest.raises(InvalidSignature):
        verifier.verify(message, max_age=None)


def test_vector_deterministic_signature_is_reproduced(vector):
    if vector["alg"] not in ("ed25519", "hmac-sha256"):
        pytest.skip(f"{vector['alg']} signatures are randomised: verified only")
    message = _vector_message(vector, with_signature=False)
    components, params = _parsed_input(vector)
    _, private = _vector_keys(vector)
    signer = HTTPMessageSigner(
        signature_algorithm=_LIB_ALGORITHMS[vector["alg"]],
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={params["keyid"]: private}),
    )
    signer.sign(
        message,
        key_id=params["keyid"],
        created=dt.datetime.fromtimestamp(params["created"], dt.UTC),
        include_alg=False,
        covered_component_ids=components,
        use_existing_digest=True,
        label=vector["label"],
    )
    assert message.headers["Signature-Input"] == f"{vector['label']}={vector['input']}"
    assert message.headers["Signature"] == f"{vector['label']}=:{vector['sig']}:"


def test_vector_through_signature_verifier(vector):
    """Our verifier accepts the RFC's request signatures and reports the RFC's base."""
    if vector["msg"] != "request" or vector["alg"] == "hmac-sha256":
        pytest.skip("SignatureVerifier handles request signatures with public keys only")
    message = _vector_message(vector, with_signature=True)
    public, _ = _vector_keys(vector)
    verifier = SignatureVerifier(
        resolve_key=lambda key_id: (public, None) if key_id == vector["keyid"] else None,
        required_components=(),
        require_nonce=False,
        nonce_store=MemoryNonceStore(),
        algorithms=httpsig.SUPPORTED_ALGORITHMS,
    )
    _, params = _parsed_input(vector)
    verified = verifier.verify(
        message.method, message.url, message.headers, message.body, now=params["created"]
    )
    assert verified.signature_base == vector["signature_base"]
    assert verified.algorithm == vector["alg"]
    assert verified.key_id == vector["keyid"]
    assert verified.signature == base64.b64decode(vector["sig"])
    assert verified.signature_input == f"{vector['label']}={vector['input']}"


def test_vector_ed25519_reproduced_by_sign_request():
    vec = next(v for v in _DATA["vectors"] if v["alg"] == "ed25519")
    message = _vector_message(vec, with_signature=False)
    components, params = _parsed_input(vec)
    _, private = _vector_keys(vec)
    sign_request(
        message,
        key_id=vec["keyid"],
        private_key=private,
        components=components,
        label=vec["label"],
        nonce=False,
        created=params["created"],
        include_alg=False,
    )
    assert message.headers["Signature"] == f"{vec['label']}=:{vec['sig']}:"


def test_vector_content_digests_check():
    for msg in (_DATA["test_request"], _DATA["test_response"]):
        body = msg["body"].encode()
        assert check_content_digest(msg["headers"]["Content-Digest"], body) == ("sha-512",)
        assert content_digest(body, "sha-512") == msg["headers"]["Content-Digest"]


# --------------------------------------------------------------------------- Content-Digest


def test_content_digest_rfc9530_example():
    # RFC 9530 §2 example body {"hello": "world"} and its sha-256 digest.
    body = b'{"hello": "world"}'
    assert content_digest(body) == "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    assert content_digest(b"") == (
        "sha-256=:" + base64.b64encode(hashlib.sha256(b"").digest()).decode() + ":"
    )
    with pytest.raises(ValueError):
        content_digest(body, "md5")


def test_check_content_digest():
    body = b"payload"
    good256 = content_digest(body)
    good512 = content_digest(body, "sha-512")
    assert check_content_digest(good256, body) == ("sha-256",)
    assert check_content_digest(f"{good256}, {good512}", body) == ("sha-256", "sha-512")
    assert check_content_digest(f"md5=:AAAA:, {good256}", body) == ("sha-256",)
    assert code_of(lambda: check_content_digest(good256, b"other")) == "digest_mismatch"
    bad512 = content_digest(b"other", "sha-512")
    assert code_of(lambda: check_content_digest(f"{good256}, {bad512}", body)) == (
        "digest_mismatch"
    )
    assert code_of(lambda: check_content_digest("md5=:AAAA:", body)) == "missing_digest"
    assert code_of(lambda: check_content_digest(None, body)) == "missing_digest"
    assert code_of(lambda: check_content_digest("", body)) == "missing_digest"
    assert code_of(lambda: check_content_digest("sha-256=:AAAA:", body)) == "digest_mismatch"
    assert code_of(lambda: check_content_digest("sha-256=abc", body)) == "digest_mismatch"
    assert code_of(lambda: check_content_digest("sha-256=:%%:", body)) == "digest_mismatch"
    assert code_of(lambda: check_content_digest(f"{good256}, {good256}", body)) == (
        "digest_mismatch"
    )


# --------------------------------------------------------------------------- target URI


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("https", "users.local", "/a", ""), "https://users.local/a"),
        (("HTTPS", "Users.Local:443", "/a", "x=1"), "https://users.local/a?x=1"),
        (("http", "h:80", "", "?x=1"), "http://h/?x=1"),
        (("https", "h:8001", "/a%2Fb", ""), "https://h:8001/a%2Fb"),
        (("https", "h", "/caf\u00e9 x", "q=a b"), "https://h/caf%C3%A9%20x?q=a%20b"),
        (("https", "h", "/100%", ""), "https://h/100%25"),
        (("https", "[::1]:8001", "/p", "a=%20&b"), "https://[::1]:8001/p?a=%20&b"),
    ],
)
def test_target_uri(args, expected):
    assert target_uri(*args) == expected


@pytest.mark.parametrize(
    "args", [("ftp", "h", "/", ""), ("https", "h/x", "/", ""), ("https", "a@b", "/", "")]
)
def test_target_uri_refuses(args):
    with pytest.raises(ValueError):
        target_uri(*args)


# --------------------------------------------------------------------------- round trips


def test_round_trip(keypair, server):
    request = signed(keypair)
    assert request.headers["Content-Digest"] == content_digest(BODY)
    verified = verify(server.verifier(), request)
    assert isinstance(verified, VerifiedSignature)
    assert verified.key_id == "ads"
    assert verified.label == "sig1"
    assert verified.algorithm == algorithm_for_key(keypair)
    assert verified.covered_components == ("@method", "@target-uri", "content-digest")
    assert verified.created == T0
    assert verified.nonce and len(verified.nonce) >= 16
    assert verified.signature_input.startswith("sig1=(")
    assert verified.signature_input in request.headers["Signature-Input"]
    assert base64.b64encode(verified.signature).decode() in request.headers["Signature"]
    assert verified.signature_base.splitlines()[:3] == [
        '"@method": POST',
        f'"@target-uri": {URL}',
        f'"content-digest": {content_digest(BODY)}',
    ]
    assert verified.signature_base.endswith(verified.signature_input.removeprefix("sig1="))


def test_signature_base_reverifies_offline(keypair, server):
    """What the audit stores (base + raw signature + public key) suffices to re-check."""
    verified = verify(server.verifier(), signed(keypair))
    public, data = keypair.public_key(), verified.signature_base.encode("ascii")
    if isinstance(public, ec.EllipticCurvePublicKey):
        r, s = verified.signature[:32], verified.signature[32:]
        der = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
        public.verify(der, data, ec.ECDSA(hashes.SHA256()))
    else:
        public.verify(verified.signature, data)


def test_round_trip_on_the_server_side_with_django_headers(keypair, server):
    request = signed(keypair, url="https://Users.Fleamarket.Local:443/api/v1/x?ids=1%2C2&q=a")
    assert request.url == "https://users.fleamarket.local/api/v1/x?ids=1%2C2&q=a"
    meta = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in request.headers.items()}
    meta["CONTENT_LENGTH"] = meta.pop("HTTP_CONTENT_LENGTH")
    uri = target_uri("https", "users.fleamarket.local", "/api/v1/x", "ids=1%2C2&q=a")
    verified = server.verifier().verify("POST", uri, HttpHeaders(meta), BODY, now=T0)
    assert verified.key_id == "ads"


def test_round_trip_empty_body_get(keypair, server):
    request = signed(keypair, method="GET", body=None)
    assert request.body is None
    assert request.headers["Content-Digest"] == content_digest(b"")
    assert verify(server.verifier(), request, body=b"").created == T0


def test_http_signature_auth(keypair, server):
    auth = HTTPSignatureAuth("ads", keypair)
    first = requests.Request("POST", URL, data=BODY, auth=auth).prepare()
    second = requests.Request("POST", URL, data=BODY, auth=auth).prepare()
    verifier = server.verifier()
    a = verifier.verify("POST", URL, first.headers, BODY)
    b = verifier.verify("POST", URL, second.headers, BODY)
    assert a.nonce != b.nonce
    with pytest.raises(TypeError):
        HTTPSignatureAuth("ads", keypair, colour="blue")


def test_sign_simple_object_with_str_body(keypair, server):
    message = Msg("PUT", URL, {"content-digest": "sha-256=:stale:"}, '{"name": "caf\u00e9"}')
    sign_request(message, key_id="ads", private_key=keypair, created=T0)
    assert list(message.headers).count("Content-Digest") == 1
    assert "content-digest" not in message.headers
    body = '{"name": "caf\u00e9"}'.encode()
    verified = server.verifier().verify("PUT", URL, message.headers, body, now=T0)
    assert verified.created == T0


def test_rsa_pss_when_allowed():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server = Server(keys={"ads": key.public_key()})
    request = signed(key)
    assert 'alg="rsa-pss-sha512"' in request.headers["Signature-Input"]
    assert code_of(lambda: verify(server.verifier(), request)) == "algorithm_not_allowed"
    allowed = server.verifier(algorithms={"rsa-pss-sha512"})
    assert verify(allowed, request).algorithm == "rsa-pss-sha512"


def test_sign_refuses_unsupported_keys_and_streams(keypair):
    weak = ec.generate_private_key(ec.SECP256K1())
    assert code_of(lambda: signed(weak)) == "algorithm_not_allowed"
    assert code_of(lambda: algorithm_for_key(object())) == "algorithm_not_allowed"
    message = Msg("POST", URL, {}, iter([b"chunk"]))
    with pytest.raises(TypeError):
        sign_request(message, key_id="ads", private_key=keypair)
    missing_header = Msg("POST", URL, {}, b"")
    with pytest.raises(SignatureError) as info:
        sign_request(missing_header, key_id="ads", private_key=keypair, components=("date",))
    assert info.value.code == "malformed_signature"


# --------------------------------------------------------------------------- refusals


def test_body_changed(keypair, server):
    request = signed(keypair)
    assert code_of(lambda: verify(server.verifier(), request, body=b'{"ids": [3]}')) == (
        "digest_mismatch"
    )


def test_method_changed(keypair, server):
    request = signed(keypair)
    assert code_of(lambda: verify(server.verifier(), request, method="PUT")) == "bad_signature"


def test_path_changed(keypair, server):
    request = signed(keypair)
    other = URL.replace("/previews", "/private")
    assert code_of(lambda: verify(server.verifier(), request, url=other)) == "bad_signature"


def test_query_changed(keypair, server):
    request = signed(keypair)
    other = URL.replace("ids=1,2", "ids=1,2,3")
    assert code_of(lambda: verify(server.verifier(), request, url=other)) == "bad_signature"


def test_host_changed(keypair, server):
    request = signed(keypair)
    other = URL.replace("users.", "evil.")
    assert code_of(lambda: verify(server.verifier(), request, url=other)) == "bad_signature"


def test_content_digest_changed_with_the_body(keypair, server):
    request = signed(keypair)
    new_body = b'{"ids": [3]}'
    headers = dict(request.headers) | {"Content-Digest": content_digest(new_body)}
    assert code_of(lambda: verify(server.verifier(), request, headers=headers, body=new_body)) == (
        "bad_signature"
    )


def test_content_digest_removed(keypair, server):
    request = signed(keypair)
    headers = {k: v for k, v in request.headers.items() if k != "Content-Digest"}
    assert code_of(lambda: verify(server.verifier(), request, headers=headers)) == (
        "missing_digest"
    )


def test_content_digest_not_covered(keypair, server):
    request = signed(keypair, components=("@method", "@target-uri"))
    assert code_of(lambda: verify(server.verifier(), request)) == "missing_component"
    lenient = server.verifier(required_components=("@method", "@target-uri"))
    assert verify(lenient, request).covered_components == ("@method", "@target-uri")
    # The digest header is still checked against the body when present.
    assert code_of(lambda: verify(lenient, request, body=b"x")) == "digest_mismatch"


def test_required_component_not_covered(keypair, server):
    request = signed(keypair)
    strict = server.verifier(required_components=(*httpsig.DEFAULT_COMPONENTS, "content-type"))
    assert code_of(lambda: verify(strict, request)) == "missing_component"


def test_query_param_component(keypair, server):
    components = (*httpsig.DEFAULT_COMPONENTS, '"@query-param";name="ids"')
    request = signed(keypair, components=components)
    verifier = server.verifier(required_components=components)
    assert verify(verifier, request).covered_components == components


@pytest.mark.parametrize(
    ("now", "code"),
    [
        (T0 + 300 + 30 + 1, "signature_too_old"),
        (T0 - 30 - 1, "created_in_future"),
    ],
)
def test_created_window(keypair, server, now, code):
    request = signed(keypair)
    assert code_of(lambda: verify(server.verifier(), request, now=now)) == code


@pytest.mark.parametrize("now", [T0 + 330, T0 - 30, dt.datetime.fromtimestamp(T0, dt.UTC)])
def test_created_window_edges_accepted(keypair, server, now):
    assert verify(server.verifier(), signed(keypair), now=now).created == T0


def test_expired(keypair, server):
    request = signed(keypair, expires=T0 + 10)
    verifier = server.verifier()
    assert verify(verifier, request, now=T0 + 40).expires == T0 + 10
    request = signed(keypair, expires=T0 + 10)
    assert code_of(lambda: verify(verifier, request, now=T0 + 41)) == "expired"


def _without_param(header: str, name: str) -> str:
    parsed = http_sf.parse(header.encode(), tltype="dictionary")
    for _label, (_inner, params) in parsed.items():
        params.pop(name, None)
    return http_sf.ser(parsed)


def test_created_missing(keypair, server):
    request = signed(keypair)
    headers = dict(request.headers)
    headers["Signature-Input"] = _without_param(headers["Signature-Input"], "created")
    assert code_of(lambda: verify(server.verifier(), request, headers=headers)) == (
        "created_missing"
    )


def test_missing_nonce(keypair, server):
    request = signed(keypair, nonce=False)
    assert code_of(lambda: verify(server.verifier(), request)) == "missing_nonce"
    lenient = server.verifier(require_nonce=False, nonce_store=None)
    assert verify(lenient, request).nonce is None


def test_nonce_replay(keypair, server):
    request = signed(keypair, nonce="same")
    verifier = server.verifier()
    assert verify(verifier, request).nonce == "same"
    assert code_of(lambda: verify(verifier, request)) == "replayed_nonce"
    # Nonces are scoped to the key id: the same nonce under another key is accepted.
    server.keys["other"] = keypair.public_key()
    other = signed(keypair, key_id="other", nonce="same")
    assert verify(verifier, other).key_id == "other"
    assert code_of(lambda: verify(verifier, other)) == "replayed_nonce"


def test_nonce_store_sees_ttl_and_only_valid_signatures(keypair, server):
    calls = []

    def store(key_id, nonce, ttl):
        calls.append((key_id, nonce, ttl))
        return True

    verifier = server.verifier(nonce_store=store, max_age=60, clock_skew=5)
    request = signed(keypair, nonce="n-1")
    assert code_of(lambda: verify(verifier, request, method="PUT")) == "bad_signature"
    assert calls == []
    verify(verifier, request)
    assert calls == [("ads", "n-1", 60 + 2 * 5 + 1)]


def test_require_nonce_needs_a_store():
    with pytest.raises(ValueError):
        SignatureVerifier(resolve_key=lambda k: None, nonce_store=None)
    with pytest.raises(ValueError):
        SignatureVerifier(
            resolve_key=lambda k: None, require_nonce=False, algorithms={"hmac-sha256"}
        )
    with pytest.raises(ValueError):
        SignatureVerifier(
            resolve_key=lambda k: None, require_nonce=False, required_components=("@METHOD",)
        )


def test_memory_nonce_store_expires():
    clock = [0.0]
    store = MemoryNonceStore(clock=lambda: clock[0])
    assert store("k", "n", 10) is True
    assert store("k", "n", 10) is False
    clock[0] = 11
    assert store("k", "n", 10) is True


@pytest.mark.parametrize(
    "resolver",
    [
        lambda key_id: (_ for _ in ()).throw(SignatureError("unknown_key")),
        lambda key_id: {}[key_id],
        lambda key_id: None,
        lambda key_id: (None, None),
    ],
    ids=["raises-signature-error", "raises-key-error", "returns-none", "returns-none-key"],
)
def test_unknown_keyid(keypair, resolver):
    verifier = SignatureVerifier(resolve_key=resolver, nonce_store=MemoryNonceStore())
    with pytest.raises(SignatureError) as info:
        verify(verifier, signed(keypair))
    assert info.value.code == "unknown_key"
    assert info.value.key_id == "ads"


def test_unknown_keyid_with_server(keypair, server):
    request = signed(keypair, key_id="nobody")
    assert code_of(lambda: verify(server.verifier(), request)) == "unknown_key"


def test_wrong_key_same_type(keypair, server):
    impostor = (
        ed25519.Ed25519PrivateKey.generate()
        if isinstance(keypair, ed25519.Ed25519PrivateKey)
        else ec.generate_private_key(ec.SECP256R1())
    )
    assert code_of(lambda: verify(server.verifier(), signed(impostor))) == "bad_signature"


def test_wrong_key_other_type(keypair, server):
    other = (
        ec.generate_private_key(ec.SECP256R1())
        if isinstance(keypair, ed25519.Ed25519PrivateKey)
        else ed25519.Ed25519PrivateKey.generate()
    )
    assert code_of(lambda: verify(server.verifier(), signed(other))) == "algorithm_not_allowed"


def test_alg_parameter_must_match_the_key(keypair, server):
    request = signed(keypair)
    headers = dict(request.headers)
    alg = algorithm_for_key(keypair)
    headers["Signature-Input"] = headers["Signature-Input"].replace(alg, "hmac-sha256")
    assert code_of(lambda: verify(server.verifier(), request, headers=headers)) == (
        "algorithm_not_allowed"
    )


def test_pinned_algorithm_must_fit_the_key(keypair):
    verifier = SignatureVerifier(
        resolve_key=lambda k: (keypair.public_key(), "rsa-pss-sha512"),
        nonce_store=MemoryNonceStore(),
        algorithms=httpsig.SUPPORTED_ALGORITHMS,
    )
    assert code_of(lambda: verify(verifier, signed(keypair))) == "algorithm_not_allowed"


def test_missing_headers(keypair, server):
    request = signed(keypair)
    verifier = server.verifier()
    for drop in ("Signature", "Signature-Input"):
        headers = {k: v for k, v in request.headers.items() if k != drop}
        assert code_of(lambda h=headers: verify(verifier, request, headers=h)) == (
            "missing_signature"
        )
    assert code_of(lambda: verifier.verify("GET", URL, {}, b"", now=T0)) == "missing_signature"


def test_headers_are_case_insensitive(keypair, server):
    request = signed(keypair)
    headers = {k.upper(): v for k, v in request.headers.items()}
    assert verify(server.verifier(), request, headers=headers).key_id == "ads"


def test_several_labels_first_qualifying_is_used(keypair, server):
    weak = signed(keypair, components=("@method",), label="weak", nonce="a")
    good = signed(keypair, label="good", nonce="b")
    headers = dict(good.headers)
    for name in ("Signature-Input", "Signature"):
        headers[name] = f"{weak.headers[name]}, {good.headers[name]}"
    verified = verify(server.verifier(), good, headers=headers)
    assert verified.label == "good"
    assert verified.nonce == "b"
    # Only the first qualifying one is tried: a broken first one is not rescued.
    broken = signed(keypair, label="broken", nonce="c")
    headers = dict(good.headers)
    bad_sig = "broken=:" + base64.b64encode(b"\x01" * 64).decode() + ":"
    headers["Signature-Input"] = (
        f"{broken.headers['Signature-Input']}, {good.headers['Signature-Input']}"
    )
    headers["Signature"] = f"{bad_sig}, {good.headers['Signature']}"
    assert code_of(lambda: verify(server.verifier(), good, headers=headers)) == "bad_signature"
    # None qualifies: the first label's reason.
    headers = dict(weak.headers)
    assert code_of(lambda: verify(server.verifier(), weak, headers=headers)) == (
        "missing_component"
    )


@pytest.mark.parametrize(
    ("signature_input", "signature", "code"),
    [
        ("", "", "missing_signature"),
        ("garbage", "garbage", "malformed_signature"),
        ("sig1=(", "sig1=:AAAA:", "malformed_signature"),
        ('sig1=("@method");created=1', "sig1=AAAA", "malformed_signature"),
        ('sig1="@method";created=1;keyid="ads"', "sig1=:AAAA:", "malformed_signature"),
        ('sig1=(@method);keyid="ads"', "sig1=:AAAA:", "malformed_signature"),
        ('sig1=("@method");keyid=ads', "sig1=:AAAA:", "malformed_signature"),
        ('sig1=("@method");keyid="ads";created=?1', "sig1=:AAAA:", "malformed_signature"),
        ('sig1=("@method");keyid="ads";created=1.5', "sig1=:AAAA:", "malformed_signature"),
        ('sig1=("@method");keyid="ads";foo=1', "sig1=:AAAA:", "malformed_signature"),
        ('sig1=("@METHOD");keyid="ads"', "sig1=:AAAA:", "malformed_signature"),
        ('sig1=("@method" "@method");keyid="ads"', "sig1=:AAAA:", "malformed_signature"),
        ('sig1=("@method");keyid="ads"', "sig2=:AAAA:", "malformed_signature"),
        ('sig1=();keyid="a", sig1=();keyid="b"', "sig1=:AAAA:", "malformed_signature"),
        ('sig1=("@method");keyid="ads";created=1;created=2', "sig1=:AAA=:", "malformed_signature"),
        ('sig1=("@method");keyid="\u00e9"', "sig1=:AAAA:", "malformed_signature"),
        ('sig1=("@method");created=1', "sig1=:AAAA:", "malformed_signature"),
        (
            'sig1=("@method" "@target-uri" "content-digest");keyid="ads";created=1',
            "sig1=:AAAA:",
            "missing_nonce",
        ),
    ],
)
def test_garbage_signature_headers(keypair, server, signature_input, signature, code):
    headers = {"Signature-Input": signature_input, "Signature": signature}
    verifier = server.verifier()
    assert code_of(lambda: verifier.verify("POST", URL, headers, BODY, now=T0)) == code


_header_text = st.one_of(
    st.text(max_size=200),
    st.text(alphabet='sig1=():;,"@-_*?.abcdefkyndtr0123456789 \t\\/+', max_size=200),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(signature_input=_header_text, signature=_header_text, digest=_header_text)
def test_random_header_values_only_raise_signature_error(signature_input, signature, digest):
    verifier = SignatureVerifier(
        resolve_key=lambda k: (_FUZZ_KEY.public_key(), None), nonce_store=MemoryNonceStore()
    )
    headers = {"Signature-Input": signature_input, "Signature": signature, "Content-Digest": digest}
    with pytest.raises(SignatureError) as info:
        verifier.verify("POST", URL, headers, BODY, now=T0)
    assert info.value.code in REASON_CODES


_FUZZ_KEY = ec.generate_private_key(ec.SECP256R1())
_FUZZ_REQUEST = signed(_FUZZ_KEY, nonce="fixed")
_FUZZ_VERIFIED = SignatureVerifier(
    resolve_key=lambda k: (_FUZZ_KEY.public_key(), None), nonce_store=MemoryNonceStore()
).verify("POST", URL, dict(_FUZZ_REQUEST.headers), BODY, now=T0)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_valid_headers_only_raise_signature_error(data):
    """Single-character edits of a valid signature's headers never verify, never crash."""
    headers = dict(_FUZZ_REQUEST.headers)
    name = data.draw(st.sampled_from(["Signature-Input", "Signature", "Content-Digest"]))
    value = headers[name]
    index = data.draw(st.integers(0, len(value) - 1))
    replacement = data.draw(st.characters(codec="ascii").filter(lambda c: c != value[index]))
    headers[name] = value[:index] + replacement + value[index + 1 :]
    verifier = SignatureVerifier(
        resolve_key=lambda k: (_FUZZ_KEY.public_key(), None), nonce_store=MemoryNonceStore()
    )
    try:
        verified = verifier.verify("POST", URL, headers, BODY, now=T0)
    except SignatureError as exc:
        assert exc.code in REASON_CODES
    else:
        # Only an edit of unused trailing bits of a base64 value (non-canonical encoding
        # of the same bytes) can pass: then what was verified is the original.
        assert verified.signature_base == _FUZZ_VERIFIED.signature_base
        assert verified.signature == _FUZZ_VERIFIED.signature
        assert check_content_digest(headers["Content-Digest"], BODY) == ("sha-256",)


# --------------------------------------------------------------------------- misc


def test_signature_error():
    error = SignatureError("bad_signature", "nope", key_id="k", label="sig1")
    assert (error.code, error.detail, error.key_id, error.label) == (
        "bad_signature",
        "nope",
        "k",
        "sig1",
    )
    assert SignatureError("expired").detail == "expired"
    with pytest.raises(ValueError):
        SignatureError("not_a_code")
    assert {
        "missing_signature",
        "malformed_signature",
        "unknown_key",
        "algorithm_not_allowed",
        "missing_component",
        "bad_signature",
        "digest_mismatch",
        "missing_digest",
        "created_missing",
        "created_in_future",
        "signature_too_old",
        "expired",
        "replayed_nonce",
        "missing_nonce",
    } == REASON_CODES


def test_library_errors_are_chained(keypair, server):
    request = signed(keypair)
    with pytest.raises(SignatureError) as info:
        verify(server.verifier(), request, method="PUT")
    assert info.value.__cause__ is not None


def test_exported_names():
    assert set(httpsig.__all__) == {
        "DEFAULT_ALGORITHMS",
        "DEFAULT_COMPONENTS",
        "REASON_CODES",
        "SUPPORTED_ALGORITHMS",
        "MemoryNonceStore",
        "SignatureError",
        "SignatureVerifier",
        "VerifiedSignature",
        "algorithm_for_key",
        "check_content_digest",
        "content_digest",
        "sign_request",
        "target_uri",
    }
    for name in httpsig.__all__:
        assert hasattr(httpsig, name)
