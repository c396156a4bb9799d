"""Request bodies of the identity service, validated by DRF serializers.

Fields are strict: a string must be a JSON string (DRF's ``CharField`` would turn
``5`` into ``"5"``), secrets are not trimmed, NUL and surrogate characters are
refused. :func:`first_error` turns DRF's error dict into one RFC 6749
``error_description``.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import QueryDict
from rest_framework import serializers
from rest_framework.settings import api_settings

__all__ = [
    "LoginSerializer",
    "RegisterServiceSerializer",
    "ServiceTokenSerializer",
    "StrictCharField",
    "TokenRequestSerializer",
    "first_error",
    "service_token_body",
    "token_form",
]


class StrictCharField(serializers.CharField):
    """A string as sent: no coercion of numbers, no trimming."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StringListField(serializers.ListField):
    """A list of strings, or one string standing for a list of one."""

    child = StrictCharField()

    def to_internal_value(self, data):
        return super().to_internal_value([data] if isinstance(data, str) else data)


def _optional(**kwargs) -> StrictCharField:
    return StrictCharField(required=False, allow_null=True, **kwargs)


#: Token endpoint parameters (RFC 6749 §3.2: none of them may be repeated).
TOKEN_PARAMS = (
    "grant_type",
    "scope",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "audience",
    # RFC 8693 token exchange (s2s_auth.issuer.exchange)
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
)


class TokenRequestSerializer(serializers.Serializer):
    """``POST /oauth/token`` form parameters; ``resource`` (RFC 8707) may repeat.

    Present-but-empty values stay (``client_secret=`` is a failed client
    authentication, not a malformed request); absent ones are left out.
    """

    grant_type = StrictCharField()
    scope = StrictCharField(required=False, allow_blank=True)
    client_id = StrictCharField(required=False, allow_blank=True)
    client_secret = StrictCharField(required=False, allow_blank=True)
    client_assertion = StrictCharField(required=False, allow_blank=True)
    client_assertion_type = StrictCharField(required=False, allow_blank=True)
    audience = StrictCharField(required=False, allow_blank=True)
    resource = serializers.ListField(child=StrictCharField(), required=False, default=list)
    subject_token = StrictCharField(required=False, allow_blank=True)
    subject_token_type = StrictCharField(required=False, allow_blank=True)
    actor_token = StrictCharField(required=False, allow_blank=True)
    actor_token_type = StrictCharField(required=False, allow_blank=True)
    requested_token_type = StrictCharField(required=False, allow_blank=True)

    def to_internal_value(self, data):
        if isinstance(data, QueryDict):
            data = self._single_values(data)
        return super().to_internal_value(data)

    @staticmethod
    def _single_values(form: QueryDict) -> dict[str, Any]:
        flat: dict[str, Any] = {"resource": form.getlist("resource")}
        for name, values in form.lists():
            if name == "resource":
                continue
            if len(values) > 1:
                raise serializers.ValidationError(
                    {api_settings.NON_FIELD_ERRORS_KEY: [f"Parameter {name[:50]!r} is repeated."]},
                    code="repeated",
                )
            flat[name] = values[0]
        return flat


#: What a strict field refuses in a non-blank string: NUL and surrogate characters.
_REFUSED_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


def token_form(data) -> dict[str, Any]:
    """:class:`TokenRequestSerializer`'s ``validated_data`` of the token endpoint's body.

    Building a serializer deep-copies its thirteen fields: per request, that cost more
    than the token's signature. A form (QueryDict) that passes every check of the
    serializer is taken as it is; anything else (a missing or blank ``grant_type``, a
    blank ``resource``, a NUL or surrogate character, a body that is not a form) goes
    through the serializer itself, so every refusal keeps its exact error. Raises
    DRF's ValidationError like ``is_valid(raise_exception=True)``.
    """
    if isinstance(data, QueryDict):
        flat = TokenRequestSerializer._single_values(data)  # a repeated parameter: refused
        if _plainly_valid(flat):
            return {name: value for name, value in flat.items() if name in _TOKEN_FIELDS}
    serializer = TokenRequestSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


_TOKEN_FIELDS = frozenset(TOKEN_PARAMS) | {"resource"}


def _plainly_valid(flat: dict[str, Any]) -> bool:
    """Whether the serializer would take ``flat`` as it is (see :func:`token_form`)."""
    if not flat.get("grant_type"):
        return False
    for name, value in flat.items():
        if name == "resource":
            if not all(item and not _REFUSED_CHARACTERS.search(item) for item in value):
                return False
        elif name in _TOKEN_FIELDS and _REFUSED_CHARACTERS.search(value):
            return False
    return True


class ServiceTokenSerializer(serializers.Serializer):
    """``POST /api/v1/account/service-token``: the token endpoint's grant as JSON."""

    serviceName = StrictCharField()
    password = StrictCharField()
    scope = _optional(allow_blank=True)
    audience = _optional(allow_blank=True)
    resource = StringListField(required=False, default=list)


def service_token_body(data) -> dict[str, Any]:
    """:class:`ServiceTokenSerializer`'s ``validated_data``, the way :func:`token_form`
    does it: a JSON object that passes every check is taken as it is, anything else goes
    through the serializer (same errors)."""
    if isinstance(data, dict):
        plain = _plain_service_token(data)
        if plain is not None:
            return plain
    serializer = ServiceTokenSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _clean(value) -> bool:
    """A string a strict field takes as it is: not blank, no NUL, no surrogate."""
    return isinstance(value, str) and value != "" and not _REFUSED_CHARACTERS.search(value)


def _plain_service_token(data: dict) -> dict[str, Any] | None:
    """The validated body when the serializer would take ``data`` as it is, else None."""
    if not (_clean(data.get("serviceName")) and _clean(data.get("password"))):
        return None
    body = {"serviceName": data["serviceName"], "password": data["password"]}
    for name in ("scope", "audience"):  # optional, null and blank allowed
        if name in data:
            value = data[name]
            if value is not None and value != "" and not _clean(value):
                return None
            body[name] = value
    resource = data.get("resource", [])
    resource = [resource] if isinstance(resource, str) else resource
    if not isinstance(resource, list) or not all(_clean(item) for item in resource):
        return None
    body["resource"] = list(resource)
    return body


class RegisterServiceSerializer(serializers.Serializer):
    """``POST /api/v1/account/register/service``.

    Name and password may be left out only when a TLS client certificate (the
    ``peer`` in the context) names the service.
    """

    serviceName = _optional()
    password = _optional()

    def validate(self, attrs):
        if self.context.get("peer") is None:
            for name in ("serviceName", "password"):
                if attrs.get(name) is None:
                    raise serializers.ValidationError({name: [f"Missing {name}."]}, code="required")
        return attrs


class LoginSerializer(serializers.Serializer):
    """``POST /api/v1/auth/login``: an end user's credentials."""

    username = StrictCharField()
    password = StrictCharField()


def first_error(errors: Any, field: str = "") -> str:
    """One sentence for ``error_description`` from DRF's error structure."""
    if isinstance(errors, dict):
        name, value = next(iter(errors.items()))
        if isinstance(name, int):  # an item of a list field: name the field
            return first_error(value, field)
        return first_error(value, "" if name == api_settings.NON_FIELD_ERRORS_KEY else str(name))
    if isinstance(errors, list):
        return first_error(errors[0], field) if errors else "Invalid request."
    code = getattr(errors, "code", "")
    if field and code in ("required", "null", "blank"):
        return f"Missing {field}."
    if field and code == "invalid":
        return f"{field} must be a string."
    text = str(errors)
    return text if field in text else f"{field}: {text}"
