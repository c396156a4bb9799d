"""errors.HTTP_STATUS: the one table from reason code to HTTP status."""

from __future__ import annotations

import subprocess
import sys

import pytest

from s2s_auth.errors import HTTP_STATUS, S2SError, http_status


@pytest.mark.parametrize(
    ("code", "scheme", "status"),
    [
        ("certificate_missing", None, 401),
        ("certificate_required", "Bearer", 401),
        ("unknown_api_key", "ApiKey", 401),
        ("unknown_key", None, 401),
        ("missing_credential", None, 401),
        # A fresh token from the issuer fixes these: 401 for Bearer tokens only.
        ("expired", "Bearer", 401),
        ("expired", "bearer", 401),
        ("expired", "ServiceJWT", 403),
        ("expired", None, 403),
        ("malformed_token", "Bearer", 401),
        ("malformed_token", "ServiceJWT", 403),
        # Presented and invalid or not allowed.
        ("bad_signature", "Bearer", 403),
        ("revoked", None, 403),
        ("principal_disabled", None, 403),
        ("a_code_nobody_listed", None, 403),
        # Ours to fix: the credential may be fine.
        ("jwks_unavailable", "Bearer", 503),
        ("crl_unavailable", None, 503),
        ("crl_stale", None, 503),
        ("trust_anchors_unavailable", None, 503),
    ],
)
def test_status_of_a_code(code, scheme, status):
    assert http_status(code, scheme) == status


def test_the_table_holds_only_the_three_statuses():
    assert set(HTTP_STATUS.values()) == {401, 503}  # everything else is the 403 default
    for key in HTTP_STATUS:
        code = key[1] if isinstance(key, tuple) else key
        assert code.islower() and " " not in code


def test_s2s_error_carries_code_and_detail():
    error = S2SError("unknown_principal", "nobody here")
    assert (error.code, error.detail, str(error)) == (
        "unknown_principal",
        "nobody here",
        "unknown_principal: nobody here",
    )


def test_errors_module_imports_no_drf():
    code = "import sys, s2s_auth.errors; print('rest_framework' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
