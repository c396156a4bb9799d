"""Verification of the whole log: every row on its own, then every chain.

:func:`verify_all` (``s2s_audit verify``) recomputes each row's hash, re-verifies every
accepted record's stored evidence (:mod:`s2s_auth.audit.evidence`), then walks every
chain from ``seq = 1`` or its checkpoint, and checks externally anchored heads.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from s2s_auth.audit.anchors import Anchor, as_anchors, check_anchor
from s2s_auth.audit.binding import Binding, check_binding
from s2s_auth.audit.canonical import GENESIS, HASHED_FIELDS, compute_hash
from s2s_auth.audit.decision import ACCEPTED
from s2s_auth.audit.evidence import AnchorCheck, certificate_names, verify_credential
from s2s_auth.audit.incidents import Incident, incidents_for
from s2s_auth.audit.replay import ReplayIndex, RowRef, credential_keys

__all__ = ["Problem", "Summary", "check_row", "heads", "verify_all"]


@dataclasses.dataclass(frozen=True)
class Problem:
    """The first broken record: its ``id`` (None for a missing one) and why."""

    record_id: int | None
    chain_id: str
    seq: int | None
    why: str

    def __str__(self) -> str:
        where = f"record {self.record_id}" if self.record_id is not None else "a missing record"
        return f"{where} (chain {self.chain_id}, seq {self.seq}): {self.why}"


@dataclasses.dataclass
class Summary:
    """What :func:`verify_all` checked, and every chain's newest ``(seq, hash)``."""

    records: int = 0
    chains: int = 0
    signatures: int = 0
    checkpoints: int = 0
    heads: dict[str, tuple[int, str]] = dataclasses.field(default_factory=dict)
    #: Replays: the log is intact, the service accepted a credential twice.
    incidents: list[Incident] = dataclasses.field(default_factory=list)

    @property
    def open_incidents(self) -> list[Incident]:
        return [i for i in self.incidents if not i.acknowledged]


def check_row(
    row: dict[str, Any], anchors: AnchorCheck | None = None, binding: Binding | None = None
) -> str | None:
    """A row's own integrity: its hash; for an accepted record the stored credential
    (verifies with the stored certificate, and signed this row's method, path and time:
    :mod:`~s2s_auth.audit.binding`, with ``binding`` or the settings), the certificate
    (names the principal, chains to ``anchors`` at the record's time). None when fine,
    else why not."""
    expected = compute_hash(row)
    if expected != row["hash"]:
        return f"hash mismatch: content hashes to {expected}, stored {row['hash']}"
    if row["outcome"] != ACCEPTED:
        return None
    if row["credential"]:
        failure = verify_credential(row["credential"], row["signature_base"], row["certificate"])
        if failure:
            return failure
        failure = check_binding(row, binding or Binding.from_settings())
        if failure:
            return failure
    if row["certificate"]:
        if row["principal"]:
            failure = certificate_names(row["certificate"], row["principal"])
            if failure:
                return failure
        if anchors is not None:
            return anchors(row["certificate"], row["time"])
    return None


def _records(using: str | None = None, batch: int = 2000) -> Iterator[dict[str, Any]]:
    from s2s_auth.models import AuditRecord

    queryset = AuditRecord.objects.using(using) if using else AuditRecord.objects.all()
    yield from (
        queryset.order_by("chain_id", "seq", "id")
        .values("id", "hash", *HASHED_FIELDS)
        .iterator(chunk_size=batch)
    )


def verify_all(
    *,
    using: str | None = None,
    anchors: AnchorCheck | None = None,
    anchored_heads: Iterable[Anchor] | dict[str, tuple[int, str]] | None = None,
    binding: Binding | None = None,
) -> tuple[Problem | None, Summary]:
    """Check every record and every chain; return (first problem or None, summary).

    First each row on its own (:func:`check_row`; ``binding`` defaults to the
    settings: ``CLOCK_SKEW``, ``HTTPSIG_MAX_AGE``, this service's SPIFFE ID), reporting
    the failing row with the lowest ``id`` (so an edited row is the one named even when
    it also breaks its chain). A self-signed credential accepted in two records is not a
    broken log but an incident (``summary.incidents``), found by what identifies the
    credential rather than its bytes (:mod:`s2s_auth.audit.replay`): the later record
    replays the earlier. Then every chain is walked from ``seq = 1`` or from its
    checkpoint. With ``anchored_heads`` (:class:`~s2s_auth.audit.anchors.Anchor` lines of
    ``s2s_audit heads`` and ``prune``), each anchored head must still be there unchanged,
    or be covered by a checkpoint that is anchored too
    (:func:`~s2s_auth.audit.anchors.check_anchor`).
    """
    from s2s_auth.models import AuditCheckpoint

    checkpoints_qs = AuditCheckpoint.objects.using(using) if using else AuditCheckpoint.objects
    binding = binding or Binding.from_settings()
    checkpoints = {c.chain_id: (c.seq, c.hash) for c in checkpoints_qs.all()}
    summary = Summary(checkpoints=len(checkpoints))
    own: Problem | None = None
    link: Problem | None = None
    chain_id, expect_seq, expect_prev, prev_id = None, 0, GENESIS, None
    stored: dict[str, dict[int, str]] = {}
    anchored = sorted(as_anchors(anchored_heads))
    want = {a.chain_id for a in anchored}
    seen = ReplayIndex()

    for row in _records(using):
        summary.records += 1
        failure = check_row(row, anchors, binding)
        if not failure and row["outcome"] == ACCEPTED and row["credential"]:
            keys = credential_keys(row["credential"], row["signature_base"], row["certificate"])
            ref = RowRef(row["time"], row["id"], sys.intern(row["chain_id"]), row["seq"])
            seen.add(ref, keys)
        if failure and (own is None or row["id"] < own.record_id):
            own = Problem(row["id"], row["chain_id"], row["seq"], failure)
        if row["outcome"] == ACCEPTED and row["credential"] and not failure:
            summary.signatures += 1
        if row["chain_id"] != chain_id:
            chain_id = row["chain_id"]
            summary.chains += 1
            start_seq, start_hash = checkpoints.get(chain_id, (0, GENESIS))
            expect_seq, expect_prev, prev_id = start_seq + 1, start_hash, None
        if link is None:
            if row["seq"] != expect_seq:
                before = f"after record {prev_id}" if prev_id else "at the start of the chain"
                link = Problem(
                    row["id"],
                    chain_id,
                    row["seq"],
                    f"sequence gap {before}: expected seq {expect_seq}, found {row['seq']} "
                    "(a record was deleted or inserted)",
                )
            elif row["prev_hash"] != expect_prev:
                link = Problem(
                    row["id"],
                    chain_id,
                    row["seq"],
                    f"prev_hash {row['prev_hash']} does not match the hash {expect_prev} of the "
                    f"previous record{f' {prev_id}' if prev_id else ''} (a record was replaced)",
                )
        expect_seq, expect_prev, prev_id = row["seq"] + 1, row["hash"], row["id"]
        summary.heads[chain_id] = (row["seq"], row["hash"])
        if chain_id in want:
            stored.setdefault(chain_id, {})[row["seq"]] = row["hash"]

    summary.incidents = incidents_for(seen.replays(), using)
    if own is not None:
        return own, summary
    if link is not None:
        return link, summary
    vouched = {(a.chain_id, a.seq, a.hash) for a in anchored if a.checkpoint}
    for anchor in anchored:
        why = check_anchor(
            anchor, stored.get(anchor.chain_id, {}), checkpoints.get(anchor.chain_id), vouched
        )
        if why:
            return Problem(None, anchor.chain_id, anchor.seq, why), summary
    return None, summary


def heads(using: str | None = None) -> dict[str, tuple[int, str]]:
    """Every chain's newest stored (or checkpointed) ``(seq, hash)``."""
    from s2s_auth.models import AuditCheckpoint, AuditRecord

    result: dict[str, tuple[int, str]] = {}
    for c in (AuditCheckpoint.objects.using(using) if using else AuditCheckpoint.objects).all():
        result[c.chain_id] = (c.seq, c.hash)
    queryset = AuditRecord.objects.using(using) if using else AuditRecord.objects.all()
    for chain_id, seq, hash_ in (
        queryset.order_by("chain_id", "-seq").values_list("chain_id", "seq", "hash").iterator()
    ):
        if chain_id not in result or result[chain_id][0] < seq:
            result[chain_id] = (seq, hash_)
    return result
