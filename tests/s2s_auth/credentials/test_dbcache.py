"""The embedded replay store (s2s_auth.credentials.dbcache.ReplayDatabaseCache).

In-process tests run on the test project's database (SQLite, or PostgreSQL in the
second pass). The race runs real contender processes, each with several threads and
connections, on a SQLite file and on a throwaway PostgreSQL database at 127.0.0.1:5432
in every pass (skipped only when no PostgreSQL answers there): of all the concurrent
``add()`` calls of one key, exactly one may win, whether the key was absent or expired.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from s2s_auth.credentials.dbcache import ReplayDatabaseCache
from s2s_auth.credentials.replay import ReplayStoreUnavailable, remember_once
from tests.s2s_auth.contenders import contender, race

BACKEND = "s2s_auth.credentials.dbcache.ReplayDatabaseCache"


def make_store(options: dict | None = None) -> ReplayDatabaseCache:
    """A store on a table of its own (the sweep schedule is per table)."""
    table = f"s2s_dbcache_{uuid.uuid4().hex[:10]}"
    call_command("createcachetable", table, verbosity=0)
    return ReplayDatabaseCache(table, {"OPTIONS": options or {}})


def rows(store: ReplayDatabaseCache) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT cache_key FROM {connection.ops.quote_name(store._table)}")  # noqa: S608
        return {key.split(":", 2)[2] for (key,) in cursor.fetchall()}


@pytest.fixture
def store(db):
    return make_store()


def test_add_once_then_a_replay(store):
    assert store.add("jti", "first", timeout=60)
    assert not store.add("jti", "second", timeout=60)
    assert store.get("jti") == "first"
    assert store.add("other", 1, timeout=60)


def test_an_expired_key_can_be_added_again(store):
    assert store.add("nonce", "old", timeout=0)  # stored already expired
    assert store.get("nonce") is None
    assert store.add("nonce", "new", timeout=60)
    assert not store.add("nonce", "again", timeout=60)
    assert store.get("nonce") == "new"


def test_set_touch_get_and_incr(store):
    store.set("history", [1.0, 2.0], 60)
    store.set("history", [3.0], 60)  # replaces a live entry
    assert store.get("history") == [3.0]
    assert store.touch("history", 120)
    assert not store.touch("missing", 120)
    store.set("gone", 1, 0)
    assert not store.touch("gone", 120)  # expired counts as absent
    store.set("count", 1, 60)
    assert store.incr("count", 2) == 3
    assert store.get("count") == 3
    store.set("forever", "v", None)
    assert store.get("forever") == "v"
    assert not store.add("forever", "w", timeout=60)


def test_get_many_reads_live_entries_and_deletes_expired_ones(store):
    store.set("a", {"n": 1}, 60)
    store.set("b", [2], None)
    store.set("old", "x", 0)  # stored already expired
    assert store.get_many(["a", "b", "old", "missing"]) == {"a": {"n": 1}, "b": [2]}
    assert rows(store) == {"a", "b"}  # the expired row went as it was read
    assert store.get_many([]) == {}
    assert store.get("a", version=2) is None  # keys carry their version
    store.set("a", "v2", 60, version=2)
    assert store.get_many(["a"], version=2) == {"a": "v2"}
    assert store.get("a") == {"n": 1}


def test_a_failing_add_leaves_the_callers_transaction_usable(db):
    from s2s_auth.models import ServicePrincipal

    missing = ReplayDatabaseCache("s2s_no_such_table", {})
    with transaction.atomic():
        with pytest.raises(DatabaseError):
            missing.add("k", 1, timeout=60)
        # PostgreSQL aborts a transaction at its first error, unless in a savepoint.
        assert ServicePrincipal.objects.count() == 0


def test_the_sweep_deletes_expired_rows_only(db):
    store = make_store({"SWEEP_EVERY": 3})
    assert store.add("a", 1, timeout=0)
    assert store.add("b", 1, timeout=0)
    assert rows(store) == {"a", "b"}
    assert store.add("c", 1, timeout=60)  # the third write sweeps
    assert rows(store) == {"c"}


def test_live_entries_are_never_culled(db, caplog):
    store = make_store({"SWEEP_EVERY": 1, "MAX_ENTRIES": 2, "CULL_FREQUENCY": 1})
    with caplog.at_level(logging.WARNING, logger="s2s_auth.replay"):
        for n in range(5):
            assert store.add(f"k{n}", 1, timeout=60)
    assert rows(store) == {f"k{n}" for n in range(5)}
    assert not any(store.add(f"k{n}", 2, timeout=60) for n in range(5))
    assert "more than MAX_ENTRIES=2" in caplog.text


def test_remember_once_on_it(db, settings):
    table = make_store()._table
    settings.CACHES = {**settings.CACHES, "replay": {"BACKEND": BACKEND, "LOCATION": table}}
    settings.S2S_AUTH = {**settings.S2S_AUTH, "REPLAY_CACHE": "replay"}
    assert remember_once("t", "issuer", "jti-1", ttl=30)
    assert not remember_once("t", "issuer", "jti-1", ttl=30)
    assert remember_once("t", "issuer", "jti-2", ttl=30)
    settings.CACHES = {**settings.CACHES, "replay": {"BACKEND": BACKEND, "LOCATION": "nope"}}
    with pytest.raises(ReplayStoreUnavailable):
        remember_once("t", "issuer", "jti-3", ttl=30)


# -- the race: processes x threads x connections --------------------------------------

PROCESSES, THREADS, KEYS = 3, 4, 60


def _postgres_base() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        url = "postgres://postgres@127.0.0.1:5432/postgres"
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port or 5432), 1).close()
    except OSError:
        pytest.skip(f"no PostgreSQL at {parts.hostname}:{parts.port or 5432}")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def race_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'race.sqlite3'}"
        return
    import psycopg

    parts = urlsplit(_postgres_base())
    admin = urlunsplit(parts._replace(path="/postgres"))
    name = f"s2s_race_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _contender(url: str, *args: str) -> subprocess.Popen:
    return contender("-m", "tests.s2s_auth.credentials.dbcache_race", url, *args)


def test_concurrent_adds_have_exactly_one_winner(race_database):
    setup = _contender(race_database, "setup", str(KEYS))
    assert setup.communicate(timeout=120)[0].strip() == "ok"
    contenders = [
        _contender(race_database, "race", str(KEYS), str(THREADS)) for _ in range(PROCESSES)
    ]
    results = race(contenders, timeout=120)  # every thread is waiting on stdin
    winners: dict[str, int] = {}
    for won in results:
        assert len(won) == THREADS
        for keys in won.values():
            for key in keys:
                winners[key] = winners.get(key, 0) + 1
    assert winners == {f"race:{n}": 1 for n in range(KEYS)}  # absent and expired keys alike
