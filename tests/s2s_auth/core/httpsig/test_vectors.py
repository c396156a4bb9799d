"""RFC 9421 Appendix B test vectors, through the library and through our verifier."""

from __future__ import annotations

import base64
import datetime as dt
import json

import http_sf
import pytest
from cryptography.hazmat.primitives import serialization
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

from s2s_auth.core import httpsig
from s2s_auth.core.httpsig import (
    MemoryNonceStore,
    SignatureVerifier,
    check_content_digest,
    content_digest,
    sign_request,
)
from tests.s2s_auth.core.httpsig.support import (
    VECTORS_PATH,
    Msg,
    Resp,
)

# --------------------------------------------------------------------------- RFC 9421 App. B


# Vendored in tests/fixtures/vectors (see its README): a missing file fails collection.
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
