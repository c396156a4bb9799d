"""mechanisms.base: the Authorization header parsed once, every error mapped once."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from rest_framework import status

from s2s_auth.core.certs import CertificateRejected
from s2s_auth.core.jose import TokenError
from s2s_auth.core.jwks import JWKSUnavailable
from s2s_auth.errors import S2SError
from s2s_auth.mechanisms.base import (
    CredentialMissing,
    CredentialRejected,
    DependencyUnavailable,
    ServiceAuthentication,
    authorization_header,
    http_error,
)


def request_with(header):
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    return RequestFactory().get("/", **extra)


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("Bearer abc", ("bearer", "abc")),
        ("bEaReR abc", ("bearer", "abc")),
        ("Bearer   abc  ", ("bearer", "abc")),
        ("Bearer\tabc", ("bearer", "abc")),
        ("Bearer", ("bearer", "")),
        ("ApiKey a b", ("apikey", "a b")),
    ],
)
def test_authorization_header(header, parsed):
    assert authorization_header(request_with(header)) == parsed


@pytest.mark.parametrize(
    ("error", "scheme", "cls", "status_code"),
    [
        (S2SError("certificate_missing", "no certificate"), None, CredentialMissing, 401),
        (TokenError("expired"), "Bearer", CredentialMissing, 401),
        (TokenError("expired"), "ServiceJWT", CredentialRejected, 403),
        (CertificateRejected("revoked", "revoked"), None, CredentialRejected, 403),
        (CertificateRejected("crl_unavailable", "no CRL"), None, DependencyUnavailable, 503),
        (JWKSUnavailable("issuer down", retry_after=7.5), "Bearer", DependencyUnavailable, 503),
    ],
)
def test_http_error(error, scheme, cls, status_code):
    exc = http_error(error, scheme=scheme)
    assert type(exc) is cls
    assert exc.status_code == status_code
    assert exc.reason == error.code
    assert exc.detail == {"error": error.code, "detail": error.detail}


def test_503_carries_retry_after():
    assert http_error(JWKSUnavailable("down", retry_after=7.5)).wait == 7
    assert http_error(S2SError("crl_unavailable", "no CRL")).wait == 1
    assert DependencyUnavailable("x", "y").status_code == status.HTTP_503_SERVICE_UNAVAILABLE


def test_an_http_error_is_passed_through():
    exc = CredentialRejected("replayed_jti", "again")
    assert http_error(exc) is exc


class Toy(ServiceAuthentication):
    keyword = "Toy"
    mechanism = "toy"


@pytest.mark.parametrize(
    ("header", "value"),
    [(None, None), ("Bearer x", None), ("toy x", "x"), ("Toy", ""), ("TOY  x y ", "x y")],
)
def test_get_authorization_is_for_the_keyword_only(header, value):
    assert Toy().get_authorization(request_with(header)) == value


def test_reject_maps_audits_and_raises(db):
    request = request_with("Toy x")
    with pytest.raises(CredentialMissing) as excinfo:
        Toy().reject(request, S2SError("unknown_key", "who?"))
    assert excinfo.value.reason == "unknown_key"
    with pytest.raises(CredentialRejected):
        Toy().reject(request, S2SError("bad_signature", "no"))
