"""In-process cost of the embedded replay store: µs per cache call, Django's
``DatabaseCache`` against :class:`s2s_auth.credentials.dbcache.ReplayDatabaseCache`.

``add`` of a fresh key (a first jti), ``add`` of a live key (a replay), and the
throttles' ``get`` + ``set``, on a SQLite file (WAL, like the deployment: the
directory is ``$TMPDIR``, so ``TMPDIR=/dev/shm`` shows the CPU without the disk) and
on PostgreSQL (a throwaway database; skipped when none answers)::

    python -m bench.replay_store
    python -m bench.replay_store -n 5000 --postgres postgres://postgres@127.0.0.1:5432/postgres
    python -m bench.replay_store --rows 20000   # a busy table: Django's COUNT(*) scans it

Each database runs in a process of its own (Django is configured per process); both
backends share the table layout, each has a table of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BACKENDS = {
    "django": "django.core.cache.backends.db.DatabaseCache",
    "replay": "s2s_auth.credentials.dbcache.ReplayDatabaseCache",
}


def _configure(url: str) -> None:
    import dj_database_url
    import django
    from django.conf import settings

    database = dj_database_url.parse(url)
    if database["ENGINE"].endswith("sqlite3"):  # fleamarket.settings.database()
        database["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    settings.configure(
        DATABASES={"default": database},
        CACHES={
            name: {
                "BACKEND": backend,
                "LOCATION": f"bench_{name}_cache",
                # The deployment's: Django's cull stays far away.
                "OPTIONS": {"MAX_ENTRIES": 100_000},
            }
            for name, backend in BACKENDS.items()
        },
        USE_TZ=True,
    )
    django.setup()


def _time(calls, n: int, rounds: int = 3) -> dict:
    best = None
    for r in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            calls(r * n + i)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if best is None or cpu < best[1]:
            best = (wall, cpu)
    return {"wall_us": round(best[0] / n * 1e6, 1), "cpu_us": round(best[1] / n * 1e6, 1)}


def _fill(store, rows: int) -> None:
    """``rows`` live entries, as a busy service's table holds (Django's COUNT scans them)."""
    from django.db import connections, router

    connection = connections[router.db_for_write(store.cache_model_class)]
    table = connection.ops.quote_name(store._table)
    expires = connection.ops.adapt_datetimefield_value(
        datetime.fromtimestamp(time.time() + 3600, tz=UTC).replace(microsecond=0)
    )
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (cache_key, value, expires) VALUES (%s, %s, %s)",  # noqa: S608
            [(f":1:fill:{n}", "gAJLAS4=", expires) for n in range(rows)],
        )


def measure(url: str, n: int, rows: int = 0) -> dict:
    """µs per call of each backend on the database at ``url`` (in this process)."""
    _configure(url)
    from django.core.cache import caches
    from django.core.management import call_command

    call_command("createcachetable", verbosity=0)
    results = {}
    for name in BACKENDS:
        store = caches[name]
        _fill(store, rows)
        run = uuid.uuid4().hex[:8]
        store.add(f"warm:{run}", 1, 60)
        store.add(f"live:{run}", 1, 600)
        results[name] = {
            "add": _time(lambda i, s=store, r=run: s.add(f"jti:{r}:{i}", 1, 60), n),
            "add_replay": _time(lambda i, s=store, r=run: s.add(f"live:{r}", 1, 60), n),
            "get_set": _time(
                lambda i, s=store, r=run: s.set(f"thr:{r}", [i, *s.get(f"thr:{r}", [])][:5], 60),
                n,
            ),
        }
    return results


def _postgres(base: str):
    """A throwaway database on ``base``'s server: (url, drop) or None."""
    try:
        import psycopg

        parts = urlsplit(base)
        admin = urlunsplit(parts._replace(path="/postgres"))
        name = f"bench_replay_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True, connect_timeout=2) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        print(f"PostgreSQL at {base}: skipped ({type(exc).__name__})", file=sys.stderr)
        return None

    def drop():
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit(parts._replace(path=f"/{name}")), drop


def _args(n: int, rows: int) -> list[str]:
    return ["-n", str(n), "--rows", str(rows)]


def _child(url: str, n: int, rows: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.replay_store", "--measure", url, *_args(n, rows)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="calls per case and round")
    parser.add_argument("--rows", type=int, default=0, help="live entries in the table first")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="one JSON line")
    options = parser.parse_args(argv)
    if options.measure:
        print(json.dumps(measure(options.measure, options.n, options.rows)))
        return 0
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_replay_") as tmp:
        results[f"sqlite ({tmp})"] = _child(
            f"sqlite:///{tmp}/bench.sqlite3", options.n, options.rows
        )
    made = _postgres(options.postgres) if options.postgres else None
    if made is not None:
        url, drop = made
        try:
            results["postgresql"] = _child(url, options.n, options.rows)
        finally:
            drop()
    if options.json:
        print(json.dumps({"us_per_call": results, "n": options.n, "rows": options.rows}))
        return 0
    print(f"{'database':34} {'backend':8} {'case':11} {'wall µs':>9} {'CPU µs':>9}")
    for database, backends in results.items():
        for backend, cases in backends.items():
            for case, us in cases.items():
                print(
                    f"{database:34} {backend:8} {case:11} {us['wall_us']:9.1f} {us['cpu_us']:9.1f}"
                )
    return 0


if __name__ == "__main__":
    os.environ.pop("DJANGO_SETTINGS_MODULE", None)
    sys.exit(main())
