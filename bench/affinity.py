"""CPU affinity for the pinned PostgreSQL cases: the database on its own core.

On a small machine the server, the load clients and PostgreSQL share every core, so a
PostgreSQL case measures their contention as much as the audit write. A pinned case
splits the CPUs the run may use: the last one for the PostgreSQL backends serving the
bench's database, the others for the gunicorn server (master, workers and their
threads) and the load clients. Its "vs" is ``plain_http_pinned``: the baseline on the
same CPUs without the database, so the ratio compares like with like.

Only the backends of the bench's own database are pinned (found in
``pg_stat_activity`` while the case runs, every ``INTERVAL`` seconds, so connections
opened later are pinned too), never the postmaster: it is shared with everything else
on the machine, and its other children (other databases, other users' tests) would
inherit the pin. Pinning another user's process needs root or ``CAP_SYS_NICE``; when
that is refused, the case says so and runs unpinned.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

#: Seconds between two scans for new backends and new server threads.
INTERVAL = 0.2


def split() -> tuple[set[int], set[int]] | str:
    """(application CPUs, database CPUs), or why the machine does not allow it."""
    if not hasattr(os, "sched_getaffinity"):
        return "no sched_setaffinity on this platform"
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        return f"only {len(usable)} usable CPU: nothing to give the database"
    return set(usable[:-1]), {usable[-1]}


def tasks(pid: int) -> list[int]:
    """Every thread of ``pid`` and of its descendants (gunicorn master and workers)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        task_dir = Path(f"/proc/{current}/task")
        with contextlib.suppress(OSError):
            for task in task_dir.iterdir():
                found.append(int(task.name))
                children = (task / "children").read_text().split()
                todo.extend(int(child) for child in children)
    return found


def _set(pids, cpus: set[int]) -> tuple[int, str]:
    """Pin ``pids``; (how many, the first refusal)."""
    done, refused = 0, ""
    for pid in pids:
        try:
            os.sched_setaffinity(pid, cpus)
            done += 1
        except ProcessLookupError:
            pass  # ended meanwhile
        except PermissionError as exc:
            refused = refused or f"pid {pid}: {exc.strerror}"
    return done, refused


def backends(database_url: str) -> list[int]:
    """The pids of the PostgreSQL backends connected to this URL's database."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    name = conninfo_to_dict(database_url).get("dbname")
    with psycopg.connect(database_url, autocommit=True, connect_timeout=3) as conn:
        own = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> %s", (name, own)
        ).fetchall()
    return [row[0] for row in rows]


class Pinning:
    """While entered: the server's process tree on the application CPUs, the database's
    backends (``database_url``, optional) on the database CPUs, and the calling thread
    (so the load clients it forks) on the application CPUs; all restored on exit."""

    def __init__(self, server_pid: int, database_url: str | None, cpus):
        self.server_pid = server_pid
        self.database_url = database_url
        self.app, self.db = cpus
        self.everything = self.app | self.db
        self.pinned_backends: set[int] = set()
        self.refused = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-pinning", daemon=True)
        self._own = None

    def _scan(self) -> None:
        _, refused = _set(tasks(self.server_pid), self.app)
        self.refused = self.refused or refused
        if self.database_url:
            new = set(backends(self.database_url)) - self.pinned_backends
            done, refused = _set(new, self.db)
            self.refused = self.refused or refused
            if done:
                self.pinned_backends |= new

    def _loop(self) -> None:
        while not self._stop.wait(INTERVAL):
            with contextlib.suppress(Exception):  # best effort between scans
                self._scan()

    def __enter__(self) -> Pinning:
        self._own = os.sched_getaffinity(0)
        os.sched_setaffinity(0, self.app)
        self._scan()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        os.sched_setaffinity(0, self._own)
        _set(tasks(self.server_pid), self.everything)
        if self.database_url:
            with contextlib.suppress(Exception):
                _set(backends(self.database_url), self.everything)

    def summary(self) -> dict:
        return {
            "app_cpus": sorted(self.app),
            "db_cpus": sorted(self.db) if self.database_url else [],
            "backends_pinned": len(self.pinned_backends),
            "refused": self.refused,
            "postmaster": "not pinned: shared with every other database on the machine",
        }
