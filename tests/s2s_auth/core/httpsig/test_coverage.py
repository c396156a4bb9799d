"""Required components with their RFC 9421 equivalents (s2s_auth.core.httpsig.coverage)."""

from __future__ import annotations

import pytest

from s2s_auth.core.httpsig import DEFAULT_COMPONENTS
from s2s_auth.core.httpsig.coverage import missing_components
from tests.s2s_auth.core.httpsig.support import BODY, URL, code_of, signed, verify

PARTS = ("@method", "@authority", "@path", "@query", "content-digest")


def _required(*names):
    return [(name, (name, frozenset())) for name in names]


def _covered(*names):
    return {(name, frozenset()) for name in names}


@pytest.mark.parametrize(
    ("covered", "has_body", "missing"),
    [
        (("@method", "@target-uri", "content-digest"), True, []),
        (("@method", "@authority", "@path", "@query", "content-digest"), True, []),
        (("@method", "@authority", "@path", "content-digest"), True, ["@target-uri"]),
        (("@method", "@path", "@query", "content-digest"), True, ["@target-uri"]),
        (("@method", "@target-uri"), False, []),
        (("@method", "@target-uri"), True, ["content-digest"]),
        (("@method", "@authority", "@path", "@query"), False, []),
        (("@target-uri",), False, ["@method"]),
    ],
)
def test_missing_components(covered, has_body, missing):
    required = _required(*DEFAULT_COMPONENTS)
    assert missing_components(required, _covered(*covered), has_body=has_body) == missing


def test_target_uri_stands_for_its_parts():
    required = _required("@authority", "@path", "@query")
    assert missing_components(required, _covered("@target-uri"), has_body=False) == []


def test_a_parameterised_requirement_is_matched_exactly():
    required = [('"@query-param";name="id"', ("@query-param", frozenset({("name", "id")})))]
    assert missing_components(required, _covered("@target-uri"), has_body=False) == [
        '"@query-param";name="id"'
    ]


# -- through the verifier ---------------------------------------------------------------


def test_authority_path_query_accepted_as_target_uri(keypair, server):
    request = signed(keypair, components=PARTS)
    verified = verify(server.verifier(), request)
    assert verified.covered_components == PARTS
    assert '"@authority": users.fleamarket.local\n' in verified.signature_base
    assert '"@query": ?ids=1,2\n' in verified.signature_base


def test_authority_path_query_still_bound_to_this_origin(keypair, server):
    """The server's own origin is the URL the parts are compared with, port included."""
    for_8002 = signed(keypair, components=PARTS, url=URL.replace("users.", "127.0.0.1:8002/x"))
    at_8001 = URL.replace("users.fleamarket.local", "127.0.0.1:8001")
    for_other_port = signed(
        keypair, components=PARTS, url=URL.replace("users.fleamarket.local", "127.0.0.1:8002")
    )
    assert code_of(lambda: verify(server.verifier(), for_other_port, url=at_8001)) == (
        "bad_signature"
    )
    assert code_of(lambda: verify(server.verifier(), for_8002, url=at_8001)) == "bad_signature"
    request = signed(keypair, components=PARTS)
    other_query = URL.replace("ids=1,2", "ids=1,2,3")
    assert code_of(lambda: verify(server.verifier(), request, url=other_query)) == "bad_signature"


def test_parts_without_query_are_not_enough(keypair, server):
    request = signed(keypair, components=("@method", "@authority", "@path", "content-digest"))
    assert code_of(lambda: verify(server.verifier(), request)) == "missing_component"


def test_content_digest_not_required_without_a_body(keypair, server):
    request = signed(keypair, method="GET", body=None, components=("@method", "@target-uri"))
    assert verify(server.verifier(), request, body=b"").covered_components == (
        "@method",
        "@target-uri",
    )
    # The same signature with a body smuggled in: now the body must be covered.
    again = signed(keypair, method="GET", body=None, components=("@method", "@target-uri"))
    assert code_of(lambda: verify(server.verifier(), again, body=BODY)) == "missing_component"
