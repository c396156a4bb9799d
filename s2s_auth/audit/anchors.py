"""Externally anchored chain heads, and what may stand in for a missing one.

``s2s_audit heads`` prints every chain's newest ``(seq, hash)``; shipped somewhere the
database's writers cannot change, those lines let ``verify --heads`` see a deleted
tail. ``s2s_audit prune`` prints the checkpoints it wrote as lines with
``"checkpoint": true``, to be shipped the same way.

A checkpoint lives in the same database as the records, so it cannot vouch for
itself: one forged row (``seq`` at or past the anchored head) would otherwise explain
away any deleted tail. An anchored head that is no longer stored passes only when the
chain's checkpoint covers it **and** that very checkpoint (``seq`` and ``hash``) is
anchored too, as a checkpoint line.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping

__all__ = ["Anchor", "anchor_line", "check_anchor", "parse_anchors"]


@dataclasses.dataclass(frozen=True, order=True)
class Anchor:
    """One anchored point of a chain: a head, or a checkpoint ``prune`` wrote."""

    chain_id: str
    seq: int
    hash: str
    checkpoint: bool = False


def anchor_line(anchor: Anchor) -> str:
    """The JSON line ``heads``/``prune`` print for ``anchor``."""
    data = {"chain_id": anchor.chain_id, "seq": anchor.seq, "hash": anchor.hash}
    if anchor.checkpoint:
        data["checkpoint"] = True
    return json.dumps(data)


def parse_anchors(lines: Iterable[str]) -> list[Anchor]:
    """Anchors from JSON lines (blank lines skipped); ValueError/KeyError/TypeError on a
    malformed one. Every line counts, several per chain included."""
    anchors = []
    for line in lines:
        if not line.strip():
            continue
        item = json.loads(line)
        anchors.append(
            Anchor(
                chain_id=str(item["chain_id"]),
                seq=int(item["seq"]),
                hash=str(item["hash"]),
                checkpoint=item.get("checkpoint") is True,
            )
        )
    return anchors


def as_anchors(value) -> list[Anchor]:
    """``value``: Anchors, or the ``{chain_id: (seq, hash)}`` of earlier releases."""
    if isinstance(value, Mapping):
        return [Anchor(chain, int(seq), hash_) for chain, (seq, hash_) in value.items()]
    return list(value or ())


def check_anchor(
    anchor: Anchor,
    stored: Mapping[int, str],
    checkpoint: tuple[int, str] | None,
    vouched: set[tuple[str, int, str]],
) -> str | None:
    """Why ``anchor`` does not hold, or None. ``stored``: the chain's ``{seq: hash}``;
    ``checkpoint``: its ``(seq, hash)``; ``vouched``: the anchored checkpoints."""
    actual = stored.get(anchor.seq)
    if actual is not None:
        if actual != anchor.hash:
            return f"the anchored head has hash {anchor.hash}, the stored one {actual}"
        return None
    if checkpoint is None or checkpoint[0] < anchor.seq:
        return "the anchored head is missing: the chain's tail was deleted"
    cp_seq, cp_hash = checkpoint
    if cp_seq == anchor.seq and cp_hash != anchor.hash:
        return f"the anchored head has hash {anchor.hash}, the checkpoint {cp_hash}"
    if (anchor.chain_id, cp_seq, cp_hash) not in vouched:
        return (
            f"the anchored head is missing and the checkpoint at seq {cp_seq} that would "
            "cover it is not anchored (a checkpoint row can be forged to hide a deleted "
            "tail): ship the lines `s2s_audit prune` prints with the anchored heads"
        )
    return None
