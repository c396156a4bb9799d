"""Fixtures of the issuer tests: its settings, clients of each kind, a user, a clock."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from s2s_auth.credentials import principals
from s2s_auth.issuer.throttling import IssuerRateThrottle

from .support import ISSUER


@pytest.fixture
def issuer_conf(ca, settings, tmp_path, db):
    """S2S_AUTH for the issuer: the session CA, a fresh key directory, a fixed issuer."""
    conf = {
        **settings.S2S_AUTH,  # TRUST_DOMAIN and the end-user token settings
        "SERVICE_NAME": "users",
        "PKI_DIR": str(ca.directory),
        "SIGNING_KEYS_DIR": str(tmp_path / "keys"),
        "ISSUER": ISSUER,
        # The endpoint's tests need it open; test_views checks the closed default.
        "REGISTRATION_OPEN": True,
    }
    settings.S2S_AUTH = conf
    cache.clear()
    yield conf
    cache.clear()


@pytest.fixture
def ads(issuer_conf, db):
    """A client "ads" with two scopes and a generated secret: (name, secret)."""
    principals.ensure_principal("ads", ["users:read", "users:notify"])
    return "ads", principals.create_client_secret("ads")


@pytest.fixture
def pk_client(ca, make_leaf, issuer_conf, db):
    """A private_key_jwt client "pkjwt" and its certificate."""
    principals.ensure_principal("pkjwt", ["users:read"])
    return make_leaf(ca, "pkjwt")


@pytest.fixture
def tls_client(ca, make_leaf, issuer_conf, db):
    """A tls_client_auth client "mtlsclient" and its certificate."""
    principals.ensure_principal("mtlsclient", ["users:read"])
    return make_leaf(ca, "mtlsclient")


@pytest.fixture
def alice(db, issuer_conf):
    return get_user_model().objects.create_user("alice", password="alice-password-1")


class Clock:
    """A clock the test moves: the throttles' ``timer``."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def throttle_clock(monkeypatch):
    """Freeze the throttles' clock: windows move only when the test says so."""
    clock = Clock()
    monkeypatch.setattr(IssuerRateThrottle, "timer", clock)
    return clock
