"""conf: the S2S_AUTH namespace names nothing of a deployment, and says what is missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

import s2s_auth
from s2s_auth.conf import DEFAULTS, S2SSettings, s2s_settings, spiffe_id

PACKAGE = Path(s2s_auth.__file__).parent


def test_defaults_name_no_deployment():
    assert DEFAULTS["TRUST_DOMAIN"] is None
    assert DEFAULTS["END_USER_AUDIENCE"] is None
    assert DEFAULTS["USER_TOKEN_AUDIENCE"] is None
    assert DEFAULTS["USER_TOKEN_SCOPE"] == ""


def test_the_package_names_no_deployment():
    """No ``fleamarket`` and no ``ads:`` scope in any file of the package, docstrings,
    help texts and migrations included."""
    found = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in sorted(PACKAGE.rglob("*"))
        if path.is_file() and path.suffix in {".py", ".html", ".txt", ".md", ".json"}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"fleamarket|\bads:(read|write)", line, re.IGNORECASE)
    ]
    assert found == []


def test_trust_domain_unset_is_a_clear_error():
    conf = S2SSettings({"SERVICE_NAME": "users"})
    with pytest.raises(ImproperlyConfigured, match=re.escape("S2S_AUTH['TRUST_DOMAIN']")):
        conf.TRUST_DOMAIN  # noqa: B018
    with pytest.raises(ImproperlyConfigured, match=re.escape("S2S_AUTH['TRUST_DOMAIN']")):
        conf.own_spiffe_id  # noqa: B018
    assert conf.configured("TRUST_DOMAIN") is None


def test_a_caller_without_trust_domain_is_told_so_not_wrong_audience(ca):
    """The first thing a calling service does is name its target's SPIFFE ID."""
    from s2s_auth import ServiceCredentials, ServiceJWTAuth

    issued = ca.issue("lonely-caller")
    credentials = ServiceCredentials.from_files(issued.cert_path, issued.key_path)
    with (
        override_settings(S2S_AUTH={"PKI_DIR": str(ca.directory)}),
        pytest.raises(ImproperlyConfigured, match=re.escape("S2S_AUTH['TRUST_DOMAIN']")),
    ):
        ServiceJWTAuth(credentials, "users")
    with override_settings(S2S_AUTH={"TRUST_DOMAIN": "example.test"}):
        assert ServiceJWTAuth(credentials, "users").audience == spiffe_id("users")
        assert spiffe_id("users") == "spiffe://example.test/service/users"


def test_end_user_audiences_default_to_the_trust_domain():
    conf = S2SSettings({"TRUST_DOMAIN": "example.test"})
    assert conf.END_USER_AUDIENCE == "spiffe://example.test"
    assert conf.USER_TOKEN_AUDIENCE == conf.END_USER_AUDIENCE  # issuer and resource agree
    assert conf.USER_TOKEN_SCOPE == ""
    with pytest.raises(ImproperlyConfigured, match="TRUST_DOMAIN"):
        S2SSettings({}).END_USER_AUDIENCE  # noqa: B018


def test_explicit_values_win():
    conf = S2SSettings(
        {
            "TRUST_DOMAIN": "example.test",
            "END_USER_AUDIENCE": ["web", "app"],
            "USER_TOKEN_AUDIENCE": "web",
        }
    )
    assert conf.END_USER_AUDIENCE == ["web", "app"]
    assert conf.USER_TOKEN_AUDIENCE == "web"


def test_unknown_keys_are_refused_and_settings_reload():
    with pytest.raises(ImproperlyConfigured, match="TRUST_DOMIAN"):
        S2SSettings({"TRUST_DOMIAN": "x"})
    with override_settings(S2S_AUTH={"TRUST_DOMAIN": "one.test"}):
        assert s2s_settings().TRUST_DOMAIN == "one.test"
        with override_settings(S2S_AUTH={"TRUST_DOMAIN": "two.test"}):
            assert s2s_settings().TRUST_DOMAIN == "two.test"


def test_a_value_read_is_kept_but_a_missing_required_one_raises_every_time():
    """Values are kept on the settings object after the first read (requests read
    some twenty); a required setting that is missing is not kept as anything."""
    conf = S2SSettings({"MECHANISMS": ["mtls"]})
    assert conf.MECHANISMS == ["mtls"]
    assert conf.MECHANISMS is conf.MECHANISMS
    for _ in range(2):
        with pytest.raises(ImproperlyConfigured, match="TRUST_DOMAIN"):
            conf.TRUST_DOMAIN  # noqa: B018
    with pytest.raises(AttributeError, match="TRUST_DOMIAN"):
        conf.TRUST_DOMIAN  # noqa: B018


def test_a_kept_value_does_not_outlive_a_change_of_settings():
    with override_settings(S2S_AUTH={"TRUST_DOMAIN": "one.test", "MECHANISMS": ["mtls"]}):
        assert s2s_settings().MECHANISMS == ["mtls"]
        assert s2s_settings().END_USER_AUDIENCE == "spiffe://one.test"
    with override_settings(S2S_AUTH={"TRUST_DOMAIN": "two.test", "MECHANISMS": ["api_key"]}):
        assert s2s_settings().MECHANISMS == ["api_key"]
        assert s2s_settings().END_USER_AUDIENCE == "spiffe://two.test"
