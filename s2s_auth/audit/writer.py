"""Where an audit record is written: in the request, by a group commit, or by the
process's background writer thread in batches.

Which record goes where (:func:`store`)
=======================================
* ``S2S_AUTH["AUDIT_WRITE"] = "sync"``, and a record written inside an open transaction
  on the audit database (``AuditMiddleware``'s block of a state-changing request, a
  test's transaction, an admin change): written at once, in the caller's thread and
  transaction (:func:`s2s_auth.audit.chain.write`), so a view that fails leaves no
  "accepted" record.
* The *accepted* record of a request whose method may change state (anything but GET,
  HEAD, OPTIONS; an event without a request) outside a transaction — a token issued, an
  operator's command: committed before the caller goes on, by the group commit in
  ``"group_commit"`` mode, at once in ``"background"`` mode (never queued).
* Everything else — the accepted record of a safe request, every refusal:

  ``"group_commit"`` (the default, :mod:`s2s_auth.audit.group`)
      the request waits for its row's commit; rows of requests that arrive while one
      commit runs share the next one (one bulk INSERT, one transaction), written by the
      first of them. What a crash can lose: nothing that was answered.
  ``"background"``
      queued to this process's writer thread, and the request answers at once. The
      thread writes a batch (one bulk INSERT, one transaction, on its own connection,
      chained onto its own chain) when ``AUDIT_BATCH_SIZE`` rows are queued or the
      oldest has waited ``AUDIT_FLUSH_INTERVAL`` seconds. What a crash (kill -9, OOM
      kill, power loss) can lose: the rows queued and not yet committed — about the
      last ``AUDIT_FLUSH_INTERVAL`` seconds of this process's safe-method and refused
      requests, never more than ``AUDIT_QUEUE_SIZE`` rows plus the batch being
      written. A normal exit (SIGTERM to gunicorn, ``atexit``, gunicorn's
      ``worker_exit`` hook in :mod:`s2s_auth.tls.gunicorn_conf`) writes the queue first.

Never dropped: when the queue holds ``AUDIT_QUEUE_SIZE`` rows a request waits up to
``AUDIT_QUEUE_TIMEOUT`` seconds for room, then writes its row itself. A failed batch of
the writer thread (the database down, a lock timeout) stays queued, in order, and is
retried with backoff (50 ms doubling to 5 s) on a fresh connection; the log names the
error class only.

Processes: the thread starts at the first queued row of a process (so a worker forked
from a preloading master gets its own), and a forked child forgets its parent's queue
(those rows are the parent's to write). Tests: :func:`flush` waits until everything
queued so far is written.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
from typing import Any

from django.db import connections

from s2s_auth import metrics
from s2s_auth.audit import chain
from s2s_auth.audit.decision import ACCEPTED
from s2s_auth.audit.group import Group
from s2s_auth.conf import s2s_settings

__all__ = ["MODES", "SAFE_METHODS", "flush", "shutdown", "store"]

logger = logging.getLogger("s2s_auth")

MODES = ("group_commit", "background", "sync")
#: Requests that do not change state (RFC 9110 §9.2.1): their accepted record may wait.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_BACKOFF_FIRST, _BACKOFF_MAX = 0.05, 5.0
_QUEUED, _TAKEN, _DONE = range(3)


class _Item:
    __slots__ = ("row", "since", "state")

    def __init__(self, row: dict[str, Any]):
        self.row, self.state, self.since = row, _QUEUED, time.monotonic()


class _Writer:
    """One process's queue and thread for one database alias."""

    def __init__(self, alias: str):
        self.alias = alias
        self.lock = threading.Lock()
        self.wakeup = threading.Condition(self.lock)  # the thread: rows, flush, close
        self.settled = threading.Condition(self.lock)  # requests: commits, room
        self.queue: collections.deque[_Item] = collections.deque()
        self.taken: list[_Item] = []
        self.thread: threading.Thread | None = None
        self.flushing = 0
        self.closing = False
        self.idle = False  # the thread waits for rows (an empty queue)

    # ------------------------------------------------------------ request threads

    def submit(self, row: dict[str, Any]) -> None:
        conf = s2s_settings()
        deadline = time.monotonic() + float(conf.AUDIT_QUEUE_TIMEOUT)
        limit = max(1, int(conf.AUDIT_QUEUE_SIZE))
        item = _Item(row)
        with self.lock:
            while len(self.queue) >= limit and not self.closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.settled.wait(left)
            queued = len(self.queue) < limit and not self.closing and self._started()
            if queued:
                self.queue.append(item)
                # Wake the thread only when it waits for rows, or for a fuller batch
                # that is now full: every wake-up costs a switch of the GIL.
                if self.idle or len(self.queue) >= int(conf.AUDIT_BATCH_SIZE):
                    self.wakeup.notify()
                metrics.audit_queue_depth(len(self.queue))
        if not queued:  # back-pressure (or shutting down): this thread writes it
            logger.warning("s2s audit queue full or closed: record written in the request")
            chain.write(row)

    def _started(self) -> bool:
        """Start the thread if it is not running (the lock is held). False: it cannot be
        started (the interpreter is shutting down)."""
        if self.thread is not None and self.thread.is_alive():
            return True
        thread = threading.Thread(target=self._run, name=f"s2s-audit-writer-{self.alias}")
        thread.daemon = True  # atexit writes what is left; see shutdown()
        try:
            thread.start()
        except RuntimeError:
            return False
        self.thread = thread
        return True

    def flush(self, timeout: float | None) -> bool:
        """Wait until every row queued before this call is written. False: still some
        left after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            targets = [*self.taken, *self.queue]
            self.flushing += 1
            self.wakeup.notify()
            try:
                while any(t.state in (_QUEUED, _TAKEN) for t in targets):
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self.settled.wait(left)
            finally:
                self.flushing -= 1
        return True

    # ------------------------------------------------------------ the writer thread

    def _take(self) -> list[_Item]:
        """The next batch (the lock is held and the queue is not empty)."""
        size = max(1, int(s2s_settings().AUDIT_BATCH_SIZE))
        batch: list[_Item] = []
        while self.queue and len(batch) < size:
            item = self.queue.popleft()
            item.state = _TAKEN
            batch.append(item)
        self.taken = batch
        metrics.audit_queue_depth(len(self.queue))
        return batch

    def _due(self) -> float:
        """Seconds until the queue should be written (0: now). The lock is held."""
        if self.closing or self.flushing or not self.queue:
            return 0.0
        conf = s2s_settings()
        if len(self.queue) >= int(conf.AUDIT_BATCH_SIZE):
            return 0.0
        return self.queue[0].since + float(conf.AUDIT_FLUSH_INTERVAL) - time.monotonic()

    def _run(self) -> None:
        failures = 0
        try:
            while True:
                with self.lock:
                    while True:
                        if not self.queue:
                            if self.closing:
                                return
                            self.idle = True
                            try:
                                self.wakeup.wait()
                            finally:
                                self.idle = False
                            continue
                        due = self._due()
                        if due <= 0:
                            break
                        self.wakeup.wait(due)
                    batch = self._take()
                if not batch:
                    continue
                if self._write(batch):
                    failures = 0
                    continue
                failures += 1
                with self.lock:
                    self.wakeup.wait(min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** (failures - 1)))
        finally:
            connections[self.alias].close()

    def _write(self, batch: list[_Item]) -> bool:
        try:
            chain.write_batch([item.row for item in batch], self.alias)
        except Exception as exc:  # the database: down, locked, a constraint
            connection = connections[self.alias]
            logger.error(
                "s2s audit writer: %d records not written (%s%s), retrying",
                len(batch),
                type(exc).__name__,
                f" sqlstate={exc.__cause__.sqlstate}"
                if getattr(exc.__cause__, "sqlstate", None)
                else "",
            )
            chain.drop_chain(self.alias)  # did it commit? a new chain cannot collide
            connection.close()
            with self.lock:
                for item in reversed(batch):
                    item.state = _QUEUED
                    self.queue.appendleft(item)
                self.taken = []
                metrics.audit_queue_depth(len(self.queue))
                self.settled.notify_all()
            return False
        with self.lock:
            for item in batch:
                item.state = _DONE
            self.taken = []
            self.settled.notify_all()
        return True

    def close(self, timeout: float) -> int:
        """Write what is queued and stop the thread; the number of rows left behind."""
        with self.lock:
            self.closing = True
            self.wakeup.notify_all()
            self.settled.notify_all()
            thread = self.thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)
        with self.lock:
            return sum(1 for t in [*self.taken, *self.queue] if t.state in (_QUEUED, _TAKEN))


_writers: dict[str, _Writer] = {}
_groups: dict[str, Group] = {}
_writers_lock = threading.Lock()
_pid = os.getpid()


def _forget_after_fork() -> None:
    """In a forked child: the parent's writers and groups (their threads, locks, queued
    rows) are not ours."""
    global _writers, _groups, _writers_lock, _pid
    _writers, _groups, _writers_lock, _pid = {}, {}, threading.Lock(), os.getpid()


os.register_at_fork(after_in_child=_forget_after_fork)


def _writer(alias: str) -> _Writer:
    if _pid != os.getpid():  # a fork that bypassed register_at_fork (it cannot; safety)
        _forget_after_fork()
    writer = _writers.get(alias)
    if writer is None:
        with _writers_lock:
            writer = _writers.setdefault(alias, _Writer(alias))
    return writer


def _group(alias: str) -> Group:
    if _pid != os.getpid():
        _forget_after_fork()
    group = _groups.get(alias)
    if group is None:
        with _writers_lock:
            group = _groups.setdefault(alias, Group(alias))
    return group


def store(row: dict[str, Any]) -> chain.Pending | None:
    """Write ``row`` (from :func:`s2s_auth.audit.rows.build_row`) where it belongs (see
    the module docstring). The ``Pending`` token of a row written at once, else None."""
    mode = s2s_settings().AUDIT_WRITE
    alias = chain.audit_alias()
    at_once = (
        mode == "sync"
        or connections[alias].in_atomic_block
        or (
            mode == "background"
            and row["outcome"] == ACCEPTED
            and row["method"] not in SAFE_METHODS
        )
    )
    if at_once:
        return chain.write(row)
    if mode == "background":
        _writer(alias).submit(row)
    else:
        _group(alias).commit(row)
    return None


def flush(timeout: float | None = 30.0) -> bool:
    """Wait until every record this process queued so far is in the database. True
    when done; False when ``timeout`` seconds passed first (the database is down)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    for writer in list(_writers.values()):
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not writer.flush(left):
            return False
    return True


def shutdown(timeout: float = 10.0) -> None:
    """Write what is queued and stop the writer threads (at exit; gunicorn's
    ``worker_exit``). Rows still unwritten after ``timeout`` seconds are logged as lost."""
    if _pid != os.getpid():
        return
    for alias, writer in list(_writers.items()):
        left = writer.close(timeout)
        with _writers_lock:  # a record stored after this starts a new writer
            if _writers.get(alias) is writer:
                del _writers[alias]
        if left:
            logger.error("s2s audit writer: %d records of %s not written at exit", left, alias)


atexit.register(shutdown)
