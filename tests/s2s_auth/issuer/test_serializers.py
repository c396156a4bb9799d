"""Request serializers (s2s_auth.issuer.serializers): strict strings, the token
endpoint's no-repeat rule, and one readable error_description."""

from __future__ import annotations

import pytest
from django.http import QueryDict

from s2s_auth.issuer.serializers import (
    LoginSerializer,
    RegisterServiceSerializer,
    ServiceTokenSerializer,
    TokenRequestSerializer,
    first_error,
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
