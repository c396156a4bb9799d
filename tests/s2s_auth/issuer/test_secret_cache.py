"""Client secrets through the principal cache (s2s_auth.issuer.clients.cached_secrets_of):
no query per token, and every rotation, expiry, revocation and disable still refused at
once in this process, in the others after the shared version check, and within
PRINCIPAL_CACHE_SECONDS when a change bypasses the signals. Time is an injected clock."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from django.core.cache import caches
from django.utils import timezone

from s2s_auth.credentials import principals as services
from s2s_auth.credentials.cache import PrincipalCache, principal_cache
from s2s_auth.issuer.clients import cached_secrets_of, rotate_secret
from s2s_auth.issuer.models import ClientSecret
from s2s_auth.models import ServicePrincipal

from .support import STRONG, assert_error, post_token, service_token

GRANT = {"grant_type": "client_credentials"}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch, issuer_conf):
    clock = Clock()
    monkeypatch.setattr(principal_cache, "_clock", clock)
    principal_cache.clear()
    return clock


def test_a_cached_client_costs_no_secret_query(client, ads, clock, django_assert_num_queries):
    assert post_token(client, GRANT, auth=ads).status_code == 200
    with django_assert_num_queries(0):
        rows = cached_secrets_of("ads")
    assert [row.principal.name for row in rows] == ["ads"]
    assert post_token(client, GRANT, auth=ads).status_code == 200


def test_a_rotation_refuses_the_old_secret_at_once(client, ads, clock):
    name, old = ads
    assert post_token(client, GRANT, auth=ads).status_code == 200  # cached now
    principal = ServicePrincipal.objects.get(name=name)
    _, new = rotate_secret(principal, grace=dt.timedelta(0))
    assert_error(post_token(client, GRANT, auth=(name, old)), 401, "invalid_client")
    assert post_token(client, GRANT, auth=(name, new)).status_code == 200


def test_a_secret_expiring_while_cached_is_refused_when_it_expires(client, ads, clock):
    name, old = ads
    principal = ServicePrincipal.objects.get(name=name)
    _, new = rotate_secret(principal, grace=dt.timedelta(seconds=0.5))
    assert post_token(client, GRANT, auth=(name, old)).status_code == 200  # in its grace
    time.sleep(0.6)  # the cache still holds the row: its expiry is checked on each use
    assert_error(post_token(client, GRANT, auth=(name, old)), 401, "invalid_client")
    assert post_token(client, GRANT, auth=(name, new)).status_code == 200


def test_an_expiry_bypassing_signals_is_seen_within_the_max_age(client, ads, clock):
    assert post_token(client, GRANT, auth=ads).status_code == 200
    ClientSecret.objects.filter(principal__name="ads").update(expires_at=timezone.now())
    assert post_token(client, GRANT, auth=ads).status_code == 200  # the bound: the max age
    clock.now += 2.0
    assert_error(post_token(client, GRANT, auth=ads), 401, "invalid_client")


def test_deleting_the_secret_and_disabling_the_client_take_effect_at_once(client, ads, clock):
    assert post_token(client, GRANT, auth=ads).status_code == 200
    services.set_enabled("ads", False)
    assert_error(post_token(client, GRANT, auth=ads), 400, "unauthorized_client")
    services.set_enabled("ads", True)
    assert post_token(client, GRANT, auth=ads).status_code == 200
    ClientSecret.objects.filter(principal__name="ads").delete()  # a signal per row
    assert_error(post_token(client, GRANT, auth=ads), 401, "invalid_client")


def test_a_change_reaches_the_other_processes_through_the_shared_version(ads, clock):
    other = PrincipalCache(clock=Clock(), store=caches["default"])
    name = ads[0]
    loads = []

    def load():
        loads.append(1)
        return "rows"

    other.get(("client_secrets", name), load)
    rotate_secret(ServicePrincipal.objects.get(name=name), grace=dt.timedelta(0))
    other._clock.now += 1.1  # the next version check
    other.get(("client_secrets", name), load)
    assert len(loads) == 2  # dropped: read again


def test_unknown_clients_are_not_cached(client, ads, clock):
    for n in range(5):
        response = post_token(client, GRANT, auth=(f"nobody{n}", "x"), REMOTE_ADDR=f"10.0.0.{n}")
        assert_error(response, 401, "invalid_client")
    assert len(principal_cache) == 0


# ------------------------------------------------ registration passwords (Django's hasher)


class CountingHasher(PBKDF2PasswordHasher):
    """Django's PBKDF2 hasher (fewer rounds), counting the passwords it checks."""

    iterations = 1000
    checks = 0

    def verify(self, password, encoded):
        CountingHasher.checks += 1
        return super().verify(password, encoded)


@pytest.fixture
def self_registered(settings, clock, db):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    CountingHasher.checks = 0
    principal, _ = services.ensure_principal("selfreg", ["users:read"])
    ClientSecret.objects.create(
        principal=principal, algorithm=ClientSecret.DJANGO, digest=make_password(STRONG)
    )
    return principal


def remembered_checks() -> list:
    return [key for key in principal_cache._entries if key[0] == "password_ok"]


def test_a_successful_password_check_is_remembered_within_the_bound(client, self_registered, clock):
    for _ in range(3):
        assert post_token(client, GRANT, auth=("selfreg", STRONG)).status_code == 200
    assert CountingHasher.checks == 1
    assert all(STRONG not in repr(key) for key in remembered_checks())  # an HMAC, never it
    clock.now += 2.0  # the max age: checked again
    assert post_token(client, GRANT, auth=("selfreg", STRONG)).status_code == 200
    assert CountingHasher.checks == 2


def test_a_wrong_password_is_never_remembered(client, self_registered):
    for _ in range(3):
        response = post_token(client, GRANT, auth=("selfreg", STRONG + "x"))
        assert_error(response, 401, "invalid_client")
    assert CountingHasher.checks == 3
    assert remembered_checks() == []


def test_a_remembered_password_is_refused_at_once_after_a_rotation(client, self_registered):
    assert post_token(client, GRANT, auth=("selfreg", STRONG)).status_code == 200
    _, new = rotate_secret(self_registered, grace=dt.timedelta(0))
    assert_error(post_token(client, GRANT, auth=("selfreg", STRONG)), 401, "invalid_client")
    assert post_token(client, GRANT, auth=("selfreg", new)).status_code == 200


def test_the_json_endpoint_remembers_the_check_too(client, self_registered):
    body = {"serviceName": "selfreg", "password": STRONG}
    for _ in range(2):
        assert service_token(client, body).status_code == 200
    assert CountingHasher.checks == 1
