"""Fixtures of the audit tests: a calling service's certificate, fresh writer chains."""

from __future__ import annotations

import types

import pytest
from cryptography.hazmat.primitives import serialization
from django.db import connections

from s2s_auth import audit
from tests.s2s_auth.audit.helpers import CALLER


@pytest.fixture(scope="session")
def caller(ca):
    issued = ca.issue(CALLER)
    return types.SimpleNamespace(
        spiffe_id=issued.spiffe_id,
        key=ca.load_key(CALLER),
        chain_pem=issued.cert_path.read_text(),
        leaf_pem=ca.load_certificate(CALLER).public_bytes(serialization.Encoding.PEM).decode(),
    )


@pytest.fixture(autouse=True)
def audit_settings(ca, settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "PKI_DIR": str(ca.directory)}
    audit.reset_writer_chains()
    yield
    audit.reset_writer_chains()


@pytest.fixture
def atomic_requests(request):
    """ATOMIC_REQUESTS on or off for this test (a database setting, read per request)."""
    settings_dict = connections["default"].settings_dict
    before = settings_dict["ATOMIC_REQUESTS"]
    settings_dict["ATOMIC_REQUESTS"] = request.param
    yield request.param
    settings_dict["ATOMIC_REQUESTS"] = before
