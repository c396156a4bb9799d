"""The connection a process writes its group-commit batches on, and how it takes turns.

A group-commit leader (:mod:`s2s_auth.audit.group`) is whichever request thread finds
no commit running. It writes the batch on this process's one batch connection for the
database, not on its own thread's connection, for three reasons measured on SQLite:

* **No checkpoint inside an answer's commit.** In WAL mode SQLite checkpoints from the
  commit that grows the WAL past ``wal_autocheckpoint`` pages, and a checkpoint fsyncs
  the WAL and the database file (milliseconds each on a real disk). Run inside a
  leader's commit, it held up every request of the process waiting for that commit.
  The batch connection runs with ``wal_autocheckpoint=0``; every
  :data:`CHECKPOINT_ROWS` rows a daemon thread checkpoints (``PASSIVE``: it never
  blocks a writer) on its own connection.
* **Writers of several processes wake when it is their turn**, not after a sleep in
  SQLite's busy handler: the batch is written in a turn of
  :mod:`s2s_auth.core.sqlite_turns`.
* Its page cache and statement cache stay warm between batches.

Only SQLite database files get one: PostgreSQL checkpoints in its own processes and
wakes a waiting writer itself, and a connection of ours that outlived a test would keep
the test database from being dropped. There, and for a SQLite database in memory
(Django's test database: a second connection would be another database, or share its
cache and locks), the leader writes on its own connection.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from contextlib import nullcontext

from django.db import connections

from s2s_auth.core import sqlite_turns

__all__ = ["CHECKPOINT_ROWS", "BatchConnection"]

logger = logging.getLogger("s2s_auth")

#: Rows written on a SQLite batch connection between two checkpoints: at 5-10 WAL
#: frames per audit row, about SQLite's own ``wal_autocheckpoint`` of 1,000 pages, so
#: that other connections' commits (the replay store's, in a turn) rarely find the WAL
#: past it and checkpoint in a request.
CHECKPOINT_ROWS = 100


class BatchConnection:
    """One process's connection for the audit batches of one database alias. The
    caller (the group's leader) makes sure one thread at a time uses it."""

    def __init__(self, alias: str):
        self.alias = alias
        self.leaders_own: bool | None = None
        self.wrapper = None
        self.raw = None
        #: A cursor of the connection, kept between batches (Django makes and closes one
        #: per statement otherwise); None until the connection is opened.
        self.cursor = None
        self.sqlite_file: str | None = None
        self.rows_since_checkpoint = 0
        self.checkpointer: _Checkpointer | None = None

    def get(self):
        """The connection (a Django ``DatabaseWrapper``) to write the next batch on;
        None: the leader's own."""
        if self.wrapper is None:
            if self.leaders_own is None:
                own = connections[self.alias]
                self.leaders_own = own.vendor != "sqlite" or own.is_in_memory_db()
            if self.leaders_own:
                return None
            self.wrapper = connections.create_connection(self.alias)
            self.wrapper.inc_thread_sharing()  # leaders are different threads, in turn
            self.sqlite_file = str(self.wrapper.settings_dict["NAME"])
        self.wrapper.ensure_connection()
        if self.wrapper.connection is not self.raw:  # a new connection: set it up
            self.raw = self.wrapper.connection
            self.cursor = self.wrapper.cursor()
            self.cursor.execute("PRAGMA wal_autocheckpoint=0")
        return self.wrapper

    def turn(self):
        """Hold this database file's turn among its writers in every process
        (:mod:`s2s_auth.core.sqlite_turns`) while the batch is written."""
        return sqlite_turns.turn(self.wrapper) if self.wrapper is not None else nullcontext()

    def written(self, rows: int) -> None:
        """``rows`` committed on the batch connection: checkpoint when enough piled up."""
        if self.sqlite_file is None:
            return
        self.rows_since_checkpoint += rows
        if self.rows_since_checkpoint >= CHECKPOINT_ROWS:
            self.rows_since_checkpoint = 0
            if self.checkpointer is None:
                self.checkpointer = _Checkpointer(self.alias)
            self.checkpointer.request()

    def discard(self) -> None:
        """After a failed batch: close the connection; the next batch opens a new one."""
        if self.wrapper is not None:
            with contextlib.suppress(Exception):
                self.wrapper.close()
            self.raw = self.cursor = None


class _Checkpointer:
    """A daemon thread that checkpoints the WAL (``PASSIVE``) when asked, on its own
    connection, so that no request waits for the fsyncs."""

    def __init__(self, alias: str):
        self.alias = alias
        self.wanted = threading.Event()
        self.idle = threading.Event()  # set when no checkpoint is asked for or running
        self.done = 0  # checkpoints run
        threading.Thread(target=self._run, name="s2s-audit-checkpoint", daemon=True).start()

    def request(self) -> None:
        self.idle.clear()
        self.wanted.set()

    def _run(self) -> None:
        while True:
            self.wanted.wait()
            self.wanted.clear()
            try:
                with connections[self.alias].cursor() as cursor:
                    cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                self.done += 1
            except Exception as exc:  # the next request tries again
                logger.warning("s2s audit: WAL checkpoint failed (%s)", type(exc).__name__)
                connections[self.alias].close()
            if not self.wanted.is_set():
                self.idle.set()
