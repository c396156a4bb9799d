"""Request serializers (s2s_auth.issuer.serializers): strict strings, the token
endpoint's no-repeat rule, and one readable error_description."""

from __future__ import annotations

import pytest
from django.http import QueryDict
from rest_framework.exceptions import ValidationError

from s2s_auth.issuer.serializers import (
    LoginSerializer,
    RegisterServiceSerializer,
    ServiceTokenSerializer,
    TokenRequestSerializer,
    first_error,
    service_token_body,
    token_form,
)


def errors_of(serializer) -> str:
    assert not serializer.is_valid()
    return first_error(serializer.errors)


@pytest.mark.parametrize("value", [5, 1.5, True, None, ["a"], {"a": "b"}])
def test_strings_must_be_strings(value):
    message = errors_of(LoginSerializer(data={"username": value, "password": "pw"}))
    assert message in ("username must be a string.", "Missing username.")


def test_secrets_are_taken_as_sent():
    serializer = LoginSerializer(data={"username": " alice ", "password": "  pw \t"})
    assert serializer.is_valid()
    assert serializer.validated_data == {"username": " alice ", "password": "  pw \t"}


def test_token_form_keeps_empty_values_and_repeated_resources():
    form = QueryDict("grant_type=client_credentials&client_secret=&resource=a&resource=b")
    serializer = TokenRequestSerializer(data=form)
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {
        "grant_type": "client_credentials",
        "client_secret": "",
        "resource": ["a", "b"],
    }


@pytest.mark.parametrize("name", ["scope", "client_id", "x-unknown"])
def test_token_form_refuses_any_other_repeated_parameter(name):
    form = QueryDict(f"grant_type=client_credentials&{name}=a&{name}=b")
    assert errors_of(TokenRequestSerializer(data=form)) == f"Parameter {name!r} is repeated."


def test_token_form_needs_a_grant_type():
    assert errors_of(TokenRequestSerializer(data=QueryDict("grant_type="))) == (
        "Missing grant_type."
    )


def test_resource_is_a_string_or_a_list_of_strings():
    base = {"serviceName": "ads", "password": "pw"}
    one = ServiceTokenSerializer(data={**base, "resource": "users"})
    assert one.is_valid() and one.validated_data["resource"] == ["users"]
    assert ServiceTokenSerializer(data=base).is_valid()
    bad = ServiceTokenSerializer(data={**base, "resource": ["users", 7]})
    assert errors_of(bad) == "resource must be a string."


def test_registration_needs_name_and_password_without_a_certificate():
    assert errors_of(RegisterServiceSerializer(data={"password": "pw"})) == "Missing serviceName."
    with_peer = RegisterServiceSerializer(data={}, context={"peer": object()})
    assert with_peer.is_valid()


def test_a_body_that_is_not_an_object():
    assert "Expected a dictionary" in errors_of(LoginSerializer(data=["alice"]))


TOKEN_FORMS = [
    "grant_type=client_credentials",
    "grant_type=client_credentials&scope=users:read&resource=a&resource=b",
    "grant_type=client_credentials&client_secret=&client_id=",
    "grant_type=client_credentials&client_id=ads&client_secret=s%20p&audience=x+y&foo=bar",
    "grant_type=client_credentials&client_assertion=a.b.c&client_assertion_type=t",
    "grant_type=urn:x&subject_token=t&subject_token_type=s&actor_token=a&actor_token_type=b"
    "&requested_token_type=r",
    "",
    "grant_type=",
    "scope=users:read",
    "grant_type=client_credentials&resource=",
    "grant_type=client_credentials&resource=a&resource=",
    "grant_type=client_credentials&resource=a%00",
    "grant_type=client%00credentials",
    "grant_type=client_credentials&client_secret=%00",
    "grant_type=client_credentials&scope=a&scope=b",
    "grant_type=client_credentials&x-unknown=1&x-unknown=2",
    "grant_type=client_credentials&x-unknown=%00",
    "grant_type=%ED%A0%80",  # an encoded surrogate: decoded as U+FFFD
]


@pytest.mark.parametrize("body", TOKEN_FORMS)
def test_token_form_answers_as_the_serializer(body):
    """The token endpoint's fast path: the same data, or the same first error."""
    form = QueryDict(body)
    serializer = TokenRequestSerializer(data=form)
    try:
        expected = ("ok", dict(serializer.validated_data)) if serializer.is_valid() else None
    except ValidationError as exc:  # a repeated parameter
        expected = ("error", first_error(exc.detail))
    if expected is None:
        expected = ("error", first_error(serializer.errors))
    try:
        got = ("ok", dict(token_form(form)))
    except ValidationError as exc:
        got = ("error", first_error(exc.detail))
    assert got == expected


@pytest.mark.parametrize("character", ["\x00", "\ud800", "\udfff"])
def test_token_form_refuses_nul_and_surrogates_like_the_serializer(character):
    form = QueryDict(mutable=True)
    form.update({"grant_type": "client_credentials", "client_secret": f"a{character}"})
    with pytest.raises(ValidationError) as refused:
        token_form(form)
    assert first_error(refused.value.detail).startswith("client_secret: ")


def test_token_form_of_a_body_that_is_not_a_form():
    with pytest.raises(ValidationError) as refused:
        token_form({})
    assert first_error(refused.value.detail) == "Missing grant_type."


SERVICE_TOKEN_BODIES = [
    {"serviceName": "ads", "password": "pw"},
    {"serviceName": " ads ", "password": "  pw \t", "x": 1},
    {"serviceName": "ads", "password": "pw", "scope": "a b", "audience": "users"},
    {"serviceName": "ads", "password": "pw", "scope": "", "audience": None},
    {"serviceName": "ads", "password": "pw", "resource": "users"},
    {"serviceName": "ads", "password": "pw", "resource": ["users", "ads"]},
    {"serviceName": "ads", "password": "pw", "resource": []},
    {"serviceName": "ads", "password": "pw", "resource": None},
    {"serviceName": "ads", "password": "pw", "resource": ""},
    {"serviceName": "ads", "password": "pw", "resource": ["users", ""]},
    {"serviceName": "ads", "password": "pw", "resource": ["users", 7]},
    {"serviceName": "ads", "password": "pw", "resource": {"a": "b"}},
    {"serviceName": "ads", "password": "pw", "scope": 5},
    {"serviceName": "ads", "password": "pw", "audience": "a\x00"},
    {"serviceName": "ads", "password": "p\x00w"},
    {"serviceName": "ads", "password": ""},
    {"serviceName": "ads", "password": None},
    {"serviceName": "ads"},
    {"serviceName": 5, "password": "pw"},
    {"serviceName": True, "password": "pw"},
    {"serviceName": ["ads"], "password": "pw"},
    {},
    ["ads", "pw"],
    "ads",
]


@pytest.mark.parametrize("body", SERVICE_TOKEN_BODIES)
def test_service_token_body_answers_as_the_serializer(body):
    serializer = ServiceTokenSerializer(data=body)
    if serializer.is_valid():
        expected = ("ok", dict(serializer.validated_data))
    else:
        expected = ("error", first_error(serializer.errors))
    try:
        got = ("ok", dict(service_token_body(body)))
    except ValidationError as exc:
        got = ("error", first_error(exc.detail))
    assert got == expected
