"""Per-writer hash chains: where the next row goes, written with one INSERT.

Every writer — a (process, thread, database alias) — owns a chain with a random
``chain_id`` and numbers its rows ``seq = 1, 2, 3, …``; each row stores the previous
row's hash as ``prev_hash``. The head lives in memory (a thread-local) and advances
only when the row's transaction **commits** (``transaction.on_commit``): a rolled-back
row leaves no gap, the next row reuses its ``seq``. Rows written inside a still-open
transaction are "pending": the next row of that transaction chains onto the newest
pending row still alive, so nested savepoints work too. See :mod:`s2s_auth.audit` for
what this trades.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.db import connections, router, transaction

from s2s_auth import metrics
from s2s_auth.audit.canonical import GENESIS, compute_hash
from s2s_auth.audit.insert import insert_rows

__all__ = ["Pending", "audit_alias", "reset_writer_chains", "survived", "write", "write_batch"]


class _Chain:
    """A writer's chain: its id and committed head. Pending rows wait for a commit."""

    def __init__(self):
        self.pid = os.getpid()
        self.generation = _generation
        self.chain_id = secrets.token_hex(16)
        self.seq = 0
        self.hash = GENESIS
        self.pending: list[Pending] = []


class Pending:
    """A row written in an open transaction; called on commit (``on_commit``)."""

    __slots__ = ("chain", "done", "hash", "seq")

    def __init__(self, chain: _Chain, seq: int, hash: str):
        self.chain, self.seq, self.hash, self.done = chain, seq, hash, False

    def __call__(self) -> None:
        self.done = True
        if self.seq > self.chain.seq:
            self.chain.seq, self.chain.hash = self.seq, self.hash


_local = threading.local()
#: Bumped by reset_writer_chains(): every thread's next record starts a new chain.
_generation = 0


def _chain(alias: str) -> _Chain:
    chains = getattr(_local, "chains", None)
    if chains is None:
        chains = _local.chains = {}
    chain = chains.get(alias)
    # A forked child starts its own chain; so does every thread after a reset.
    if chain is None or chain.pid != os.getpid() or chain.generation != _generation:
        chain = chains[alias] = _Chain()
    return chain


def reset_writer_chains() -> None:
    """Start new chains for the next records of every thread, the audit writer's
    included (tests that empty the table)."""
    global _generation
    _generation += 1
    _local.chains = {}


def drop_chain(alias: str) -> None:
    """Forget this thread's chain: its next record starts a new one (after a write
    whose outcome is unknown, a retry must not reuse a ``seq`` that may be taken)."""
    getattr(_local, "chains", {}).pop(alias, None)


#: The process's group-commit chains, by alias: written by one leader at a time.
_shared: dict[str, _Chain] = {}


def shared_chain(alias: str, *, drop: bool = False) -> _Chain:
    """This process's group-commit chain (:mod:`s2s_auth.audit.group`); the caller makes
    sure one thread at a time writes it. ``drop``: start a new one."""
    chain = _shared.get(alias)
    if drop or chain is None or chain.pid != os.getpid() or chain.generation != _generation:
        chain = _shared[alias] = _Chain()
    return chain


def _alive(connection, token: Pending) -> bool:
    """Is ``token`` still queued to run on commit (its row not rolled back)?"""
    return any(entry[1] is token for entry in connection.run_on_commit)


_model = None


def audit_alias() -> str:
    """The database audit records are written to (the router's say, asked each time)."""
    global _model
    if _model is None:  # imported once: every record asks
        from s2s_auth.models import AuditRecord

        _model = AuditRecord
    return router.db_for_write(_model)


def write(row: dict[str, Any]) -> Pending:
    """INSERT ``row`` (built by :func:`s2s_auth.audit.rows.build_row`) as the next
    record of this writer's chain, in the connection's current transaction; return its
    ``Pending`` token."""
    started = time.perf_counter()
    alias = audit_alias()
    connection = connections[alias]
    chain = _chain(alias)
    if connection.in_atomic_block:
        chain.pending = [p for p in chain.pending if not p.done and _alive(connection, p)]
    else:
        chain.pending = []
    head = chain.pending[-1] if chain.pending else chain
    row = {**row, "chain_id": chain.chain_id, "seq": head.seq + 1, "prev_hash": head.hash}
    row["hash"] = compute_hash(row)
    insert_rows([row], alias)
    token = Pending(chain, row["seq"], row["hash"])
    chain.pending.append(token)
    transaction.on_commit(token, using=alias)  # runs now when in autocommit
    metrics.audit_written(time.perf_counter() - started)
    return token


def write_batch(
    rows: list[dict[str, Any]],
    alias: str,
    chain: _Chain | None = None,
    connection=None,
    cursor=None,
) -> None:
    """INSERT ``rows`` as the next records of ``chain`` (default: this thread's), all or
    none (:func:`~s2s_auth.audit.insert.insert_rows`: one multi-row INSERT, or a
    transaction around several where the backend limits the values per statement), on
    this thread's connection (or ``connection``: see
    :func:`~s2s_auth.audit.insert.insert_rows`; ``cursor``: one of it to use), which
    is in autocommit.
    The head advances only after the commit: a failed batch leaves it where it was."""
    started = time.perf_counter()
    chain = chain or _chain(alias)
    seq, head = chain.seq, chain.hash
    chained = []
    for row in rows:
        seq += 1
        row = {**row, "chain_id": chain.chain_id, "seq": seq, "prev_hash": head}
        row["hash"] = head = compute_hash(row)
        chained.append(row)
    insert_rows(chained, alias, connection, cursor)
    chain.seq, chain.hash = seq, head
    metrics.audit_written(time.perf_counter() - started)


def survived(tokens: Iterable[Pending], alias: str | None = None) -> bool:
    """Did any of these rows commit, or are they still alive in an open transaction?"""
    connection = connections[alias or audit_alias()]
    return any(t.done or _alive(connection, t) for t in tokens)
