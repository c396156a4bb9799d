"""A contender process for the replay store's race test (test_dbcache.py).

    python -m tests.s2s_auth.credentials.dbcache_race DATABASE_URL setup KEYS
    python -m tests.s2s_auth.credentials.dbcache_race DATABASE_URL race KEYS THREADS

``setup`` creates the cache table and stores every odd key already expired (a reused
jti after its lifetime). ``race`` opens one connection per thread, prints ``ready``,
waits for a line on stdin, then every thread calls ``add()`` on every key (half the
threads in reverse order) and the process prints the keys each thread won as JSON.
"""

from __future__ import annotations

import json
import sys
import threading

import dj_database_url
import django
from django.conf import settings

BACKEND = "s2s_auth.credentials.dbcache.ReplayDatabaseCache"


def configure(url: str) -> None:
    database = dj_database_url.parse(url)
    if database["ENGINE"].endswith("sqlite3"):
        # The deployment's SQLite settings (fleamarket.settings.database).
        database["OPTIONS"] = {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 30}
    settings.configure(
        DATABASES={"default": database},
        CACHES={"default": {"BACKEND": BACKEND, "LOCATION": "s2s_cache"}},
        USE_TZ=True,
    )
    django.setup()


def keys(count: int) -> list[str]:
    return [f"race:{n}" for n in range(count)]


def setup(count: int) -> None:
    from django.core.cache import cache
    from django.core.management import call_command

    call_command("createcachetable", verbosity=0)
    for key in keys(count)[1::2]:
        assert cache.add(key, "old", timeout=0)  # stored, already expired
    print("ok", flush=True)


def race(count: int, threads: int) -> None:
    from django.core.cache import caches
    from django.db import connections

    ready = threading.Barrier(threads + 1)
    go = threading.Event()
    won: dict[int, list[str]] = {}

    def contend(n: int) -> None:
        connections["default"].ensure_connection()
        ready.wait()
        go.wait()
        order = keys(count) if n % 2 == 0 else keys(count)[::-1]
        store = caches["default"]
        won[n] = [key for key in order if store.add(key, n, timeout=300)]
        connections["default"].close()

    workers = [threading.Thread(target=contend, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    ready.wait()
    print("ready", flush=True)
    sys.stdin.readline()
    go.set()
    for worker in workers:
        worker.join()
    print(json.dumps(won), flush=True)


def main(argv: list[str]) -> None:
    url, command, count, *rest = argv
    configure(url)
    if command == "setup":
        setup(int(count))
    else:
        race(int(count), int(rest[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
