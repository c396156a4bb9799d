"""SPIFFE IDs built, parsed and validated once (s2s_auth.identity)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from s2s_auth.errors import S2SError
from s2s_auth.identity import (
    MAX_SPIFFE_ID_LENGTH,
    SpiffeIDError,
    is_spiffe_id,
    name_from_path,
    parse_spiffe_id,
    service_name,
    spiffe_id,
    validate_service_name,
)

TD = "example.org"


# -- building ---------------------------------------------------------------------------


def test_spiffe_id_of_a_service():
    assert spiffe_id("users", TD) == "spiffe://example.org/service/users"
    assert spiffe_id("a", "td_1.x-y") == "spiffe://td_1.x-y/service/a"
    assert spiffe_id("a" * 63, TD).endswith("/service/" + "a" * 63)


def test_default_trust_domain_is_read_at_call_time():
    with override_settings(S2S_AUTH={"TRUST_DOMAIN": "one.test"}):
        assert spiffe_id("users") == "spiffe://one.test/service/users"
    with override_settings(S2S_AUTH={"TRUST_DOMAIN": "two.test"}):
        assert spiffe_id("users") == "spiffe://two.test/service/users"


BAD_NAMES = [
    "",
    "Users",
    "-users",
    "users-",
    "us_ers",
    "us.ers",
    "a" * 64,
    "ads\n",
    "ads\r\n",
    " ads",
    "a/b",
    "../ads",
    "ads?x=1",
    "\u00e4ds",
    "\uff41ds",  # fullwidth a
    None,
    b"ads",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_service_names_are_refused(name):
    with pytest.raises(SpiffeIDError) as info:
        spiffe_id(name, TD)
    assert info.value.code == "bad_spiffe_id"
    assert isinstance(info.value, ValueError) and isinstance(info.value, S2SError)
    with pytest.raises(SpiffeIDError):
        validate_service_name(name)


@pytest.mark.parametrize("trust_domain", ["", "Example.org", "a/b", "a:443", "td\n", "t d"])
def test_bad_trust_domains_are_refused(trust_domain):
    with pytest.raises(SpiffeIDError):
        spiffe_id("users", trust_domain)


def test_a_missing_trust_domain_setting_is_a_clear_error():
    """No default that only fits one deployment: the setting is named, not guessed."""
    with (
        override_settings(S2S_AUTH={"TRUST_DOMAIN": None}),
        pytest.raises(ImproperlyConfigured, match=r"S2S_AUTH\['TRUST_DOMAIN'\]"),
    ):
        spiffe_id("users")


# -- parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("spiffe://example.org/service/users", ("example.org", "/service/users")),
        ("spiffe://example.org", ("example.org", "")),
        ("spiffe://td/ns/default/sa/users", ("td", "/ns/default/sa/users")),
        ("spiffe://t_d-1.x/A.b_c-9", ("t_d-1.x", "/A.b_c-9")),
    ],
)
def test_parse_spiffe_id(value, expected):
    assert parse_spiffe_id(value) == expected


HOSTILE_IDS = [
    "spiffe://td/service/ads\n",
    "spiffe://td/service/ads\r",
    "spiffe://td/service/ads\x00",
    " spiffe://td/service/ads",
    "spiffe://td/service/ads ",
    "SPIFFE://td/service/ads",
    "spiffe://TD/service/ads",
    "spiffe://td:443/service/ads",
    "spiffe://user@td/service/ads",
    "spiffe://td/service/ads?x=1",
    "spiffe://td/service/ads#frag",
    "spiffe://td/service/a%64s",
    "spiffe://td/service//ads",
    "spiffe://td/service/ads/",
    "spiffe://td/",
    "spiffe://td/./service/ads",
    "spiffe://td/service/../admin",
    "spiffe:///service/ads",
    "spiffe:/td/service/ads",
    "https://td/service/ads",
    "spiffe://td/service/\u00e4ds",
    "spiffe://t\u0131d/service/ads",  # dotless i
    "spiffe://td/" + "a" * MAX_SPIFFE_ID_LENGTH,
    "",
    None,
    b"spiffe://td/service/ads",
    ["spiffe://td/service/ads"],
]


@pytest.mark.parametrize("value", HOSTILE_IDS)
def test_hostile_spiffe_ids_are_refused(value):
    with pytest.raises(SpiffeIDError) as info:
        parse_spiffe_id(value)
    assert info.value.code == "bad_spiffe_id"
    assert service_name(value, "td") is None


def test_the_length_limit_is_inclusive():
    value = "spiffe://td/" + "a" * (MAX_SPIFFE_ID_LENGTH - len("spiffe://td/"))
    assert parse_spiffe_id(value)[1].startswith("/a")


# -- the /service/<name> layout ---------------------------------------------------------


def test_service_name_of_our_trust_domain_only():
    assert service_name("spiffe://td/service/users", "td") == "users"
    assert service_name("spiffe://other/service/users", "td") is None
    assert service_name("spiffe://td/ns/default/sa/users", "td") is None
    assert service_name("spiffe://td/service/users/extra", "td") is None
    assert service_name("spiffe://td/service/Users", "td") is None
    assert service_name("spiffe://td/service/" + "a" * 63, "td") == "a" * 63
    assert service_name("spiffe://td/service/" + "a" * 64, "td") is None
    assert service_name("spiffe://td", "td") is None


def test_name_from_path():
    assert name_from_path("/service/ads") == "ads"
    assert name_from_path("/service/ads\n") is None
    assert name_from_path("/service/") is None
    assert name_from_path("") is None
    assert name_from_path("/services/ads") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("spiffe://td/service/ads", True),
        ("SPIFFE://td", True),
        ("Spiffe://", True),
        ("spiffe:/td", False),
        ("user-42", False),
        ("", False),
        (None, False),
        (42, False),
    ],
)
def test_is_spiffe_id(value, expected):
    assert is_spiffe_id(value) is expected


@given(st.text(max_size=80))
def test_service_name_and_spiffe_id_are_inverse(text):
    for value in (text, "spiffe://td/service/" + text):
        name = service_name(value, "td")
        if name is not None:
            assert spiffe_id(name, "td") == value


@given(st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True))
def test_every_valid_name_round_trips(name):
    assert service_name(spiffe_id(name, "td"), "td") == name
