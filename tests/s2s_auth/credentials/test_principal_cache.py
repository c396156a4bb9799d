"""The per-process principal cache (s2s_auth.credentials.cache): hits, invalidation by
signal and by the shared version, the max age, and a shared store that is down.

The store is the test project's real shared cache (the database cache, or Redis in the
second pass); a store that is down is a Redis client pointed at a closed port. Time is
an injected clock: the bounds are checked by behaviour, not by sleeping.
"""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from s2s_auth.credentials import cache as principal_cache_module
from s2s_auth.credentials.apikeys import APIKeyError, check_key, create_key, revoke_key
from s2s_auth.credentials.cache import PrincipalCache, principal_cache
from s2s_auth.credentials.principals import ensure_principal, set_enabled, set_scopes
from s2s_auth.errors import S2SError
from s2s_auth.mechanisms.base import identity_for
from s2s_auth.models import ServicePrincipal

SPIFFE = "spiffe://fleamarket.local/service/{}"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Counts the database reads a cache makes."""

    def __init__(self, value="row"):
        self.value = value
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.value


@pytest.fixture
def conf(settings, db):
    settings.S2S_AUTH = {
        **settings.S2S_AUTH,
        "PRINCIPAL_CACHE_SECONDS": 2,
        "PRINCIPAL_CACHE_CHECK_SECONDS": 1,
    }
    return settings


@pytest.fixture
def store(conf):
    return caches["default"]


@pytest.fixture
def dead_store():
    """A real Redis client whose server is not there (connection refused)."""
    with socket_closed_port() as port:
        yield RedisCache(f"redis://127.0.0.1:{port}/0", {})


class socket_closed_port:
    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]  # closed again on leaving: nothing listens

    def __exit__(self, *exc):
        return False


# ------------------------------------------------------------------- the cache itself


def test_a_hit_does_not_load_again(store):
    cache, load = PrincipalCache(clock=Clock(), store=store), Loader()
    assert cache.get("k", load) == "row"
    assert cache.get("k", load) == "row"
    assert load.calls == 1


def test_entries_are_read_again_after_the_max_age(store):
    clock = Clock()
    cache, load = PrincipalCache(clock=clock, store=store), Loader()
    cache.get("k", load)
    clock.now += 0.9
    cache.get("k", load)
    assert load.calls == 1
    clock.now += 1.2  # 2.1 s after the load: older than PRINCIPAL_CACHE_SECONDS
    load.value = "changed"
    assert cache.get("k", load) == "changed"
    assert load.calls == 2


def test_a_bump_by_another_process_is_seen_at_the_next_version_check(store):
    clock_a, clock_b = Clock(), Clock()
    a = PrincipalCache(clock=clock_a, store=store)
    b = PrincipalCache(clock=clock_b, store=store)
    load = Loader()
    b.get("k", load)
    assert a.bump()  # what a signal in another process does
    clock_b.now += 0.5  # within the check interval: b has not looked yet
    b.get("k", load)
    assert load.calls == 1
    clock_b.now += 0.6  # the check interval has passed: b reads the version, drops k
    load.value = "changed"
    assert b.get("k", load) == "changed"
    assert load.calls == 2
    assert b.get("k", load) == "changed"
    assert load.calls == 2  # and caches again


def test_an_unreadable_store_means_the_database_every_time(conf, dead_store):
    cache, load = PrincipalCache(clock=Clock(), store=dead_store), Loader()
    for _ in range(3):
        assert cache.get("k", load) == "row"
    assert load.calls == 3
    assert len(cache) == 0


def test_entries_are_dropped_when_the_store_goes_down(store, dead_store):
    clock = Clock()
    cache, load = PrincipalCache(clock=clock, store=store), Loader()
    cache.get("k", load)
    cache._store = dead_store  # the shared store stops answering
    clock.now += 1.1
    cache.get("k", load)
    cache.get("k", load)
    assert load.calls == 3  # nothing served from the cache while it is down
    cache._store = store  # back: caching resumes after the next check
    clock.now += 1.1
    cache.get("k", load)
    cache.get("k", load)
    assert load.calls == 4


def test_a_failed_bump_still_clears_this_process(store, dead_store):
    cache, load = PrincipalCache(clock=Clock(), store=store), Loader()
    cache.get("k", load)
    cache._store = dead_store
    assert cache.bump() is False
    assert len(cache) == 0


def test_none_is_cached_only_when_asked(store):
    cache = PrincipalCache(clock=Clock(), store=store)
    unknown = Loader(None)
    cache.get("a", unknown)
    cache.get("a", unknown)
    assert unknown.calls == 1
    cache.get("b", unknown, cache_none=False)
    cache.get("b", unknown, cache_none=False)
    assert unknown.calls == 3


def test_a_load_overtaken_by_an_invalidation_is_not_stored(store):
    cache = PrincipalCache(clock=Clock(), store=store)

    def racing_load():
        cache.clear()  # a signal while the row was being read
        return "old"

    assert cache.get("k", racing_load) == "old"
    assert len(cache) == 0


def test_size_is_bounded_oldest_first(conf, store):
    conf.S2S_AUTH = {**conf.S2S_AUTH, "PRINCIPAL_CACHE_MAX_ENTRIES": 2}
    cache, load = PrincipalCache(clock=Clock(), store=store), Loader()
    for key in ("a", "b", "c"):
        cache.get(key, load)
    assert len(cache) == 2
    cache.get("a", load)
    assert load.calls == 4  # "a" was the one dropped


def test_zero_seconds_turns_it_off(conf, store):
    conf.S2S_AUTH = {**conf.S2S_AUTH, "PRINCIPAL_CACHE_SECONDS": 0}
    cache, load = PrincipalCache(clock=Clock(), store=store), Loader()
    cache.get("k", load)
    cache.get("k", load)
    assert load.calls == 2


# -------------------------------------------------- principals, through identity_for


@pytest.fixture
def caller(conf):
    ensure_principal("cached", ["test:read"])
    return SPIFFE.format("cached")


def test_a_cached_principal_costs_no_query(caller, django_assert_num_queries):
    identity_for(caller, "mtls")
    with django_assert_num_queries(0):
        assert identity_for(caller, "mtls").scopes == {"test:read"}


def test_disabling_and_revoking_take_effect_at_once_in_this_process(caller):
    identity_for(caller, "mtls")
    set_scopes("cached", revoke=["test:read"])
    assert identity_for(caller, "mtls").scopes == frozenset()
    set_enabled("cached", False)
    with pytest.raises(S2SError) as refused:
        identity_for(caller, "mtls")
    assert refused.value.code == "principal_disabled"


def test_a_signal_bumps_the_shared_version_for_the_other_processes(caller, store):
    other = PrincipalCache(clock=Clock(), store=store)
    other.get("x", Loader())
    before = store.get(principal_cache_module.VERSION_KEY)
    set_enabled("cached", False)
    assert store.get(principal_cache_module.VERSION_KEY) != before
    other._clock.now += 1.1
    load = Loader()
    other.get("x", load)
    assert load.calls == 1  # dropped: re-read


def test_an_update_bypassing_signals_is_seen_within_the_max_age(caller, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(principal_cache, "_clock", clock)
    principal_cache.clear()
    identity_for(caller, "mtls")
    ServicePrincipal.objects.filter(name="cached").update(enabled=False)  # no signal
    identity_for(caller, "mtls")  # still cached: the bound is the max age
    clock.now += 2.0
    with pytest.raises(S2SError) as refused:
        identity_for(caller, "mtls")
    assert refused.value.code == "principal_disabled"


def test_an_unknown_principal_is_cached_until_it_is_created(conf):
    name = SPIFFE.format("newcomer")
    with pytest.raises(S2SError) as refused:
        identity_for(name, "mtls")
    assert refused.value.code == "unknown_principal"
    assert len(principal_cache) == 1  # the negative answer
    ensure_principal("newcomer", ["test:read"])  # its save invalidates
    assert identity_for(name, "mtls").name == "newcomer"


# ------------------------------------------------------------------------- API keys


def test_an_api_key_is_cached_and_its_revocation_is_immediate(caller, django_assert_num_queries):
    principal = ServicePrincipal.objects.get(name="cached")
    row, plaintext = create_key(principal)
    check_key(plaintext)
    with django_assert_num_queries(0):
        assert check_key(plaintext).key_id == row.key_id
    assert revoke_key(row.key_id) == 1  # a QuerySet.update(): invalidates explicitly
    with pytest.raises(APIKeyError) as refused:
        check_key(plaintext)
    assert refused.value.code == "api_key_revoked"


def test_a_cached_api_key_still_needs_its_secret(caller):
    principal = ServicePrincipal.objects.get(name="cached")
    _, plaintext = create_key(principal)
    check_key(plaintext)
    wrong = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    with pytest.raises(APIKeyError) as refused:
        check_key(wrong)
    assert refused.value.code == "unknown_api_key"


def test_unknown_api_key_ids_are_not_cached(caller):
    for n in range(3):
        with pytest.raises(APIKeyError):
            check_key(f"s2s_{n:016x}_{'A' * 43}")
    assert len(principal_cache) == 0  # anybody can make ids up


def test_a_database_store_without_its_table_does_not_break_the_transaction(conf):
    """The version is read inside a savepoint: on PostgreSQL a failed SELECT would
    otherwise abort the request's transaction (the audit middleware's)."""
    from django.core.cache.backends.db import DatabaseCache
    from django.db import transaction

    cache, load = PrincipalCache(clock=Clock(), store=DatabaseCache("no_such_table", {})), Loader()
    with transaction.atomic():
        assert cache.get("k", load) == "row"
        assert ServicePrincipal.objects.count() == 0  # the transaction still works
    assert load.calls == 1
