"""Every refusal of SignatureVerifier, by reason code (s2s_auth.core.httpsig.verifier)."""

from __future__ import annotations

import base64
import datetime as dt

import http_sf
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2s_auth.core import httpsig
from s2s_auth.core.httpsig import (
    REASON_CODES,
    MemoryNonceStore,
    SignatureError,
    SignatureVerifier,
    algorithm_for_key,
    check_content_digest,
    content_digest,
)
from tests.s2s_auth.core.httpsig.support import (
    BODY,
    T0,
    URL,
    code_of,
    signed,
    verify,
)

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


def test_port_changed(keypair, server):
    """Two services on one host: a request signed for :8002 does not verify at :8001."""
    request = signed(keypair, url=URL.replace("users.fleamarket.local", "127.0.0.1:8002"))
    users = URL.replace("users.fleamarket.local", "127.0.0.1:8001")
    assert code_of(lambda: verify(server.verifier(), request, url=users)) == "bad_signature"


def test_one_of_several_origins(keypair, server):
    """A server reached at several origins verifies against each, and only those."""
    own = [URL, URL.replace("users.fleamarket.local", "127.0.0.1:8001")]
    for url in own:
        request = signed(keypair, url=url)
        verified = verify(server.verifier(), request, url=own)
        assert f'"@target-uri": {url}' in verified.signature_base
    elsewhere = signed(keypair, url=URL.replace("users.fleamarket.local", "127.0.0.1:8002"))
    error = code_of(lambda: verify(server.verifier(), elsewhere, url=own))
    assert error == "bad_signature"
    request = signed(keypair)
    with pytest.raises(ValueError):
        server.verifier().verify("POST", [], dict(request.headers), request.body, now=T0)


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
    strict = server.verifier(require_nonce=True)
    assert code_of(lambda: verify(strict, request)) == "missing_nonce"
    no_store = server.verifier(nonce_store=None)
    assert verify(no_store, request).nonce is None
    assert verify(no_store, request).nonce is None  # no store: nothing remembered


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
        SignatureVerifier(resolve_key=lambda k: None, require_nonce=True, nonce_store=None)
    with pytest.raises(ValueError):
        SignatureVerifier(
            resolve_key=lambda k: None, require_nonce=False, algorithms={"hmac-sha256"}
        )
    with pytest.raises(ValueError):
        SignatureVerifier(
            resolve_key=lambda k: None, require_nonce=False, required_components=("@METHOD",)
        )


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


def test_covered_field_lines_reach_the_library_in_order(keypair, server):
    """Only covered fields go to the library: every line of each, in the order sent."""
    request = requests.Request("POST", URL, data=BODY, headers={"X-List": "a, b"}).prepare()
    components = ("@method", "@target-uri", "x-list", "content-digest")
    httpsig.sign_request(
        request, key_id="ads", private_key=keypair, components=components, created=T0
    )
    lines = [(k, v) for k, v in request.headers.items() if k != "X-List"]
    # Signed as one line "a, b"; sent as two lines of the same field, others in between.
    sent = [("Accept", "*/*"), ("X-List", "a"), *lines, ("x-list", "b")]
    assert verify(server.verifier(), request, headers=sent).key_id == "ads"
    swapped = [("Accept", "*/*"), ("X-List", "b"), *lines, ("x-list", "a")]
    assert code_of(lambda: verify(server.verifier(), request, headers=swapped)) == ("bad_signature")


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
            "signature_too_old",  # a nonce is optional (require_nonce=False)
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
