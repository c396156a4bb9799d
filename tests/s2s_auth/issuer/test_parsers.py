"""Hostile bodies (s2s_auth.issuer.parsers): whatever an anonymous caller sends to an
issuer endpoint is a 4xx with an RFC 6749 error body, never a 500.

Django's test client re-raises a view's exception, so a 500 fails these tests."""

from __future__ import annotations

import base64
import io
import json

import pytest
from rest_framework.exceptions import ParseError

from s2s_auth.issuer.parsers import BoundedFormParser, BoundedJSONParser

from .support import FORM, JSON

JSON_ENDPOINTS = [
    "/api/v1/account/service-token",
    "/api/v1/account/register/service",
    "/api/v1/auth/login",
]
DEEP_ARRAY = "[" * 7000 + "]" * 7000
DEEP_OBJECT = '{"a":' * 7000 + "1" + "}" * 7000

#: (body, content type, words of the error_description)
HOSTILE_JSON = {
    "nested_7000_arrays": (DEEP_ARRAY, JSON, "nested too deeply"),
    "nested_7000_objects": (DEEP_OBJECT, JSON, "larger than"),  # 35 kB
    "lone_surrogate_value": (
        '{"serviceName": "\\ud800", "username": "\\ud800"}',
        JSON,
        "surrogate",
    ),
    "lone_surrogate_key": ('{"\\udfff": 1}', JSON, "surrogate"),
    "invalid_utf8": (b'{"serviceName": "\xff\xfe", "username": "\xc3("}', JSON, "UTF-8"),
    "array": ("[]", JSON, "Expected a dictionary"),
    "string": ('"serviceName"', JSON, "Expected a dictionary"),
    "number": ("7", JSON, "Expected a dictionary"),
    "null": ("null", JSON, "No data"),
    "one_megabyte": (json.dumps({"password": "x" * 1_000_000}), JSON, "larger than"),
    "truncated": ('{"serviceName": ', JSON, "not valid JSON"),
    "nan": ('{"password": NaN}', JSON, "not valid JSON"),
    "empty": ("", JSON, "Missing"),
    "text_plain": ('{"username": "a"}', "text/plain", "must be application/json"),
    "form": ("username=a&password=b", FORM, "must be application/json"),
    "xml": ("<a/>", "application/xml", "must be application/json"),
    # JSON is UTF-8 (RFC 8259 §8.1): a charset parameter is not obeyed, even a codec's name
    "bad_charset": (b'{"username": "a"}', "application/json; charset=nope", "Missing"),
    "bz2_charset": (b'{"username": "a"}', "application/json; charset=bz2_codec", "Missing"),
}


def send(client, path, body, content_type):
    """POST these bytes as they are (the test client's post() would re-encode them)."""
    return client.generic("POST", path, body, content_type=content_type)


def assert_refused(response, words: str = ""):
    """A 4xx in RFC 6749 §5.2 shape whose description names the reason."""
    assert 400 <= response.status_code < 500, response.content[:300]
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] and body["error"].replace("_", "").isalpha()
    assert words.lower() in body["error_description"].lower(), body
    assert response["Cache-Control"] == "no-store"
    return body


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize("case", sorted(HOSTILE_JSON))
def test_hostile_json_bodies_are_refused_with_a_reason(client, ads, path, case):
    body, content_type, words = HOSTILE_JSON[case]
    response = send(client, path, body, content_type)
    body = assert_refused(response, words)
    assert body["error"] == "invalid_request"
    assert response.status_code == 400


HOSTILE_FORMS = {
    "one_megabyte": ("grant_type=client_credentials&scope=" + "x" * 1_000_000, FORM, "larger than"),
    "too_many_fields": ("&".join(f"f{i}=1" for i in range(2000)), FORM, "too many fields"),
    "json": ('{"grant_type": "client_credentials"}', JSON, "x-www-form-urlencoded"),
    "nested_json": (DEEP_ARRAY, JSON, "x-www-form-urlencoded"),
    "text_plain": ("grant_type=client_credentials", "text/plain", "x-www-form-urlencoded"),
    "bad_charset": (b"client_id=ads", f"{FORM}; charset=nope", "Missing grant_type"),
    "empty": ("", FORM, "Missing grant_type"),
    "repeated": ("grant_type=a&grant_type=b", FORM, "repeated"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_FORMS))
def test_hostile_token_requests_are_refused_with_a_reason(client, ads, case):
    body, content_type, words = HOSTILE_FORMS[case]
    response = send(client, "/oauth/token", body, content_type)
    assert_refused(response, words)
    assert response.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        b"grant_type=client_credentials&client_id=\xff\xfe&client_secret=\xc3(",
        b"grant_type=client_credentials&client_id=%ED%A0%80&client_secret=x",  # lone surrogate
        b"grant_type=client_credentials&client_id=a%00b&client_secret=x",  # NUL
        b"grant_type=%ff&client_id=ads&client_secret=x",
        b"grant_type=client_credentials&client_assertion_type=x&client_assertion=%00",
    ],
)
def test_odd_bytes_in_a_form_are_a_4xx(client, ads, body):
    assert_refused(send(client, "/oauth/token", body, FORM))


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe:\x00", b"a%00b:%ED%A0%80", b"ads", b":", b"\xed\xa0\x80:x", b"a" * 5000 + b":x"],
)
def test_odd_basic_credentials_are_a_4xx(client, ads, raw):
    header = "Basic " + base64.b64encode(raw).decode("ascii")
    response = client.generic(
        "POST",
        "/oauth/token",
        b"grant_type=client_credentials",
        content_type=FORM,
        HTTP_AUTHORIZATION=header,
    )
    assert_refused(response)


@pytest.mark.parametrize(
    "data",
    [
        {"username": {"a": 1}, "password": "x"},
        {"username": ["alice"], "password": "x"},
        {"username": True, "password": "x"},
        {"username": "alice", "password": 1.5},
        {"username": "al\x00ice", "password": "x"},
        {"serviceName": "ads", "password": "x", "resource": [1]},
        {"serviceName": "ads", "password": "x", "resource": {"a": "b"}},
        {"serviceName": 7, "password": "x"},
    ],
)
@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_fields_of_the_wrong_type_are_invalid_request(client, ads, path, data):
    body = assert_refused(client.post(path, data=data, content_type=JSON))
    assert body["error"] == "invalid_request"


@pytest.mark.parametrize(
    "path", ["/.well-known/jwks.json", "/.well-known/oauth-authorization-server"]
)
def test_discovery_ignores_what_is_sent_and_refuses_other_methods(client, ads, path):
    odd = client.get(path + "?%ff=%00&x=" + "y" * 5000, HTTP_ACCEPT="image/png")
    assert odd.status_code == 200
    assert odd.json()
    for method in ("post", "put", "delete"):
        response = getattr(client, method)(path, data=DEEP_ARRAY, content_type=JSON)
        assert_refused(response)
        assert response.status_code == 405
        assert response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/oauth/token", *JSON_ENDPOINTS])
def test_other_methods_are_405_in_rfc6749_shape(client, ads, path):
    response = client.get(path)
    assert_refused(response)
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_an_accept_header_does_not_change_the_answer(client, ads):
    response = client.post(
        "/api/v1/auth/login", data="[]", content_type=JSON, HTTP_ACCEPT="text/html"
    )
    assert_refused(response, "Expected a dictionary")


# -------------------------------------------------------------- the parsers alone


def parse_json(raw: bytes, **context):
    return BoundedJSONParser().parse(io.BytesIO(raw), JSON, context)


@pytest.mark.parametrize(
    "raw,code",
    [
        (DEEP_ARRAY.encode(), "too_deep"),
        (b'"\\ud800"', "invalid_encoding"),
        (b'{"a": "\\udc00\\ud800"}', "invalid_encoding"),
        (b'"\xff"', "invalid_encoding"),
        (b"[" * 20000, "body_too_large"),
        (b"{", "malformed_json"),
        (b"Infinity", "malformed_json"),
    ],
)
def test_json_parser_reason_codes(raw, code):
    with pytest.raises(ParseError) as exc:
        parse_json(raw)
    assert exc.value.get_codes() == code


def test_json_parser_keeps_valid_json_and_a_surrogate_pair():
    assert parse_json(b'{"a": ["\\ud83d\\ude00", 1]}') == {"a": ["\U0001f600", 1]}
    assert parse_json(b"[" * 500 + b"]" * 500)  # deep, but within reach


def test_json_parser_decodes_utf8_whatever_the_charset_says():
    assert parse_json('{"a": "é"}'.encode(), encoding="latin-1") == {"a": "é"}


def test_form_parser_bounds_and_fields():
    parser = BoundedFormParser()
    form = parser.parse(io.BytesIO(b"a=1&b=%C3%A9&b=2"), FORM, {})
    assert form.getlist("b") == ["é", "2"]
    with pytest.raises(ParseError) as exc:
        parser.parse(io.BytesIO(b"a=" + b"x" * parser.max_bytes), FORM, {})
    assert exc.value.get_codes() == "body_too_large"
