"""Group commit (``AUDIT_WRITE = "group_commit"``): a request answers only after its
record has committed, and the requests that arrive while one commit runs share the next.

No thread of its own: the first request to find no commit running becomes the leader —
it takes what is queued (up to ``AUDIT_BATCH_SIZE`` rows and what one INSERT carries,
its own among them), chains it onto the process's group chain
(:func:`s2s_auth.audit.chain.shared_chain`; one leader at a time writes it) and INSERTs
it, in one statement, on the process's batch connection
(:mod:`s2s_auth.audit.batch_connection`: no checkpoint in the commit, turns between
processes on SQLite).
The others wait for that commit, or lead the next batch. Alone, a request writes its
own row as ``"sync"`` would (no thread switch); under load, rows share commits.

A batch that fails (the database down, a lock timeout) is not retried here: every
request of it writes its own row as ``"sync"`` does, and fails as that would (500) if
it cannot — nothing is dropped. A request that waited ``AUDIT_QUEUE_TIMEOUT`` seconds
without its row being taken into a batch writes it itself too.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.db import connections

from s2s_auth.audit import chain
from s2s_auth.audit.batch_connection import BatchConnection
from s2s_auth.audit.insert import rows_per_statement
from s2s_auth.conf import s2s_settings

__all__ = ["Group"]

logger = logging.getLogger("s2s_auth")

_QUEUED, _TAKEN, _DONE, _FAILED = range(4)


class _Entry:
    __slots__ = ("row", "state")

    def __init__(self, row: dict[str, Any]):
        self.row, self.state = row, _QUEUED


class Group:
    """One process's group commit for one database alias."""

    def __init__(self, alias: str):
        self.alias = alias
        self.lock = threading.Lock()
        self.settled = threading.Condition(self.lock)
        self.queue: list[_Entry] = []
        self.writing = False
        self.waiting = 0  # threads waiting on ``settled``
        self.connection = BatchConnection(alias)
        self.per_statement: int | None = None  # rows one INSERT carries here

    def commit(self, row: dict[str, Any]) -> None:
        """Store ``row``; return once it has committed (raise if it cannot be stored)."""
        conf = s2s_settings()
        size = max(1, int(conf.AUDIT_BATCH_SIZE))
        deadline = time.monotonic() + float(conf.AUDIT_QUEUE_TIMEOUT)
        entry = _Entry(row)
        with self.lock:
            self.queue.append(entry)
            while entry.state in (_QUEUED, _TAKEN):
                if entry.state == _QUEUED and not self.writing:
                    self._lead(size)
                    continue
                left = deadline - time.monotonic()
                if entry.state == _QUEUED and left <= 0:
                    self.queue.remove(entry)
                    entry.state = _FAILED  # not taken in time: written below, alone
                    break
                self.waiting += 1
                try:
                    self.settled.wait(left if entry.state == _QUEUED else None)
                finally:
                    self.waiting -= 1
        if entry.state == _FAILED:
            chain.write(row)

    def _lead(self, size: int) -> None:
        """Write the next batch (called and returning with the lock held)."""
        if self.per_statement is None:
            self.per_statement = rows_per_statement(connections[self.alias])
        size = min(size, self.per_statement)
        batch, self.queue = self.queue[:size], self.queue[size:]
        for entry in batch:
            entry.state = _TAKEN
        self.writing = True
        self.lock.release()
        ok = False
        try:
            connection = self.connection.get()
            with self.connection.turn():
                chain.write_batch(
                    [e.row for e in batch],
                    self.alias,
                    chain.shared_chain(self.alias),
                    connection,
                    self.connection.cursor,
                )
            ok = True
        except Exception as exc:  # the database: each request writes its own row
            self.connection.discard()
            logger.error(
                "s2s audit group commit: %d records not written together (%s)",
                len(batch),
                type(exc).__name__,
            )
            chain.shared_chain(self.alias, drop=True)  # did it commit? start anew
        finally:
            self.lock.acquire()
            self.writing = False
            for entry in batch:
                entry.state = _DONE if ok else _FAILED
            if self.waiting:  # alone, nobody to wake (notify_all costs as much as a lock)
                self.settled.notify_all()
        if ok:
            self.connection.written(len(batch))
