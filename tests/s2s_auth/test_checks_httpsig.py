"""s2s_auth.E009: RFC 9421 verification needs this service's own origin(s)."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

ORIGIN = "https://users.example.test:8001"


@pytest.fixture
def conf(ca) -> dict:
    return {"SERVICE_NAME": "users", "TRUST_DOMAIN": "example.test", "PKI_DIR": str(ca.directory)}


def e009(s2s: dict) -> list:
    with override_settings(S2S_AUTH=s2s):
        return [m for m in run_checks(tags=["s2s_auth"]) if m.id == "s2s_auth.E009"]


@pytest.mark.parametrize(
    "mechanisms", [None, ["http_signature"], ["mtls", "http_signature"], ("http_signature",)]
)
def test_http_signature_without_an_origin_is_an_error(conf, mechanisms):
    if mechanisms is not None:  # None: the default mechanisms, which include it
        conf["MECHANISMS"] = mechanisms
    [error] = e009(conf)
    assert error.is_serious()
    assert "S2S_AUTH['HTTPSIG_ORIGIN']" in error.msg and "is not set" in error.msg
    assert "S2S_AUTH['HTTPSIG_ORIGIN']" in error.hint


@pytest.mark.parametrize(
    "origin",
    ["users.example.test", "https://users.example.test/api", ["https://a", "ftp://b"], [], ""],
)
def test_an_invalid_origin_is_an_error(conf, origin):
    assert len(e009({**conf, "HTTPSIG_ORIGIN": origin})) == 1


@pytest.mark.parametrize(
    "origin", [ORIGIN, [ORIGIN, "https://127.0.0.1:8001"], ("https://users:8000",)]
)
def test_one_or_several_origins_pass(conf, origin):
    assert e009({**conf, "HTTPSIG_ORIGIN": origin}) == []


def test_not_needed_without_http_signature(conf):
    assert e009({**conf, "MECHANISMS": ["service_jwt", "mtls"]}) == []


def test_manage_py_check_fails_naming_the_setting(conf):
    with override_settings(S2S_AUTH=conf), pytest.raises(SystemCheckError, match="HTTPSIG_ORIGIN"):
        call_command("check")
