"""Turns for the writers of a SQLite file: wait in the kernel, not in SQLite's busy handler.

SQLite admits one writer at a time. The next one gets ``SQLITE_BUSY``, and the busy
handler behind Django's ``timeout`` option *sleeps* 1, 2, 5, 10, 15, 20, 25 ms before
each retry, however soon the lock is free. Under the bench's service-JWT load two
gunicorn workers' audit batches and replay-store writes slept about a second out of
every three in each worker. A writer that takes its :func:`turn` first holds an
exclusive ``flock`` on ``<database>-s2s.lock`` (created 0600 beside the database) while
its statement runs: the next one waits in the kernel and wakes as soon as it is
released.

Only a connection in autocommit takes a turn. One inside a transaction may hold
SQLite's lock already, and must not wait for a turn held by a writer that waits for
that lock. Writers that take no turn (a view's transaction) still meet the busy
handler, which stays the safety net. Other backends, a database in memory and
platforms without ``flock`` take no turns.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

try:
    import fcntl
except ImportError:  # Windows: SQLite's busy handler alone
    fcntl = None

__all__ = ["turn"]


class _Turns:
    """This process's lock file on one database, and the lock among its threads (a
    ``flock`` excludes other open files, not other threads sharing this one)."""

    def __init__(self, database: str):
        self.fd = os.open(f"{database}-s2s.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.threads = threading.Lock()


_turns: dict[str, _Turns] = {}
_turns_lock = threading.Lock()


def _forget_after_fork() -> None:
    """In a forked child (a gunicorn worker): open files of its own (a flock is per open
    file) and fresh locks (another thread of the parent may have held one at the fork,
    and would never release it here). The parent's files are closed here, not leaked:
    closing this copy leaves a flock the parent holds in place."""
    global _turns, _turns_lock
    inherited, _turns, _turns_lock = _turns, {}, threading.Lock()
    for turns in inherited.values():
        with contextlib.suppress(OSError):
            os.close(turns.fd)


os.register_at_fork(after_in_child=_forget_after_fork)


def _for(database: str) -> _Turns:
    turns = _turns.get(database)
    if turns is None:
        with _turns_lock:
            turns = _turns.get(database) or _turns.setdefault(database, _Turns(database))
    return turns


def _database(connection) -> str | None:
    """The file whose writers take turns, or None (no turns on this connection)."""
    if fcntl is None or connection.vendor != "sqlite" or connection.in_atomic_block:
        return None
    if connection.is_in_memory_db():
        return None
    return str(connection.settings_dict["NAME"])


@contextlib.contextmanager
def turn(connection) -> Iterator[None]:
    """Hold the turn among the writers of ``connection``'s SQLite file (every process's)
    for the statements run inside; nothing where turns do not apply."""
    database = _database(connection)
    if database is None:
        yield
        return
    turns = _for(database)
    with turns.threads:
        fcntl.flock(turns.fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(turns.fd, fcntl.LOCK_UN)
