"""Work done once per request: a service JWT is parsed once by us and once by PyJWT
(when it verifies the signature), however many steps read it; the principal comes from
the cache after the first request. Counted with spies around the real functions."""

from __future__ import annotations

import jwt.api_jws
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from s2s_auth.core import jose
from s2s_auth.mechanisms import _resolved

from .test_service_jwt import call, creds, mint, pki  # noqa: F401 - fixtures


@pytest.fixture
def counted(monkeypatch):
    """How often our parser and PyJWT's ran."""
    counts = {"ours": 0, "pyjwt": 0}
    ours, theirs = jose._parse, jwt.api_jws.PyJWS._load

    def our_parse(token):
        counts["ours"] += 1
        return ours(token)

    def their_load(self, token):
        counts["pyjwt"] += 1
        return theirs(self, token)

    monkeypatch.setattr(jose, "_parse", our_parse)
    monkeypatch.setattr(jwt.api_jws.PyJWS, "_load", their_load)
    return counts


@pytest.mark.parametrize("x5c", [True, False], ids=["x5c", "registered-or-mtls"])
def test_a_service_jwt_is_parsed_once(client, creds, counted, x5c):  # noqa: F811
    extra = {} if x5c else {"SSL_CLIENT_CERT": creds.cert_path.read_text()}
    response = call(client, mint(creds, x5c=x5c), **extra)
    assert response.status_code == 200, response.json()
    assert counted == {"ours": 1, "pyjwt": 1}


def test_the_principal_is_read_once(client, creds):  # noqa: F811
    assert call(client, mint(creds)).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert call(client, mint(creds)).status_code == 200
    assert not [q for q in queries.captured_queries if "serviceprincipal" in q["sql"]]


def test_mechanism_classes_are_resolved_once(client, creds):  # noqa: F811
    _resolved.cache_clear()
    for _ in range(3):
        token = mint(creds)
        response = client.get("/service/scoped", HTTP_AUTHORIZATION=f"ServiceJWT {token}")
        assert response.status_code == 200, response.json()
    assert _resolved.cache_info().misses == 1
