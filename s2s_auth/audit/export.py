"""Taking records out: one as evidence for a third party, or old ones for good.

:func:`export_record` gives a JSON document that can be checked with nothing but the
CA certificate (see ``s2s_audit export --help``); :func:`prune` deletes a prefix of
each chain and keeps an :class:`~s2s_auth.models.AuditCheckpoint` so the rest still
verifies.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import router, transaction
from django.db.models import Max
from django.utils import timezone

from s2s_auth.audit.canonical import EXPORT_FIELDS, HASH_VERSION, canonical, iso_time, row_dict

__all__ = ["export_record", "prune"]


def export_record(record) -> dict[str, Any]:
    """A record as a JSON-able dict with everything a third party needs (see the
    ``s2s_audit export`` help): the credential, the certificate chain, the chain fields
    and the exact hash input."""
    row = row_dict(record)
    out = {name: row[name] for name in EXPORT_FIELDS}
    out["time"] = iso_time(row["time"])
    out["hash_version"] = HASH_VERSION
    out["hash_input"] = canonical(row).decode("utf-8")
    return out


def prune(older_than: dt.timedelta, *, using: str | None = None) -> tuple[int, int]:
    """Delete, per chain, the prefix of rows older than ``older_than``; keep a checkpoint
    (the last deleted ``seq`` and ``hash``) so that the chain stays verifiable.

    Returns (rows deleted, chains cut). Only a prefix is ever deleted: a row newer than
    the cutoff stops the cut of its chain, whatever its neighbours' times.
    """
    from s2s_auth.models import AuditCheckpoint, AuditRecord

    alias = using or router.db_for_write(AuditRecord)
    cutoff = timezone.now() - older_than
    records = AuditRecord.objects.using(alias)
    deleted_total, chains = 0, 0
    for chain_id in (
        records.filter(time__lt=cutoff).values_list("chain_id", flat=True).distinct().iterator()
    ):
        with transaction.atomic(using=alias):
            rows = records.filter(chain_id=chain_id)
            newer = rows.filter(time__gte=cutoff).order_by("seq").values_list("seq", flat=True)
            first_new = newer.first()
            old = rows.filter(time__lt=cutoff)
            if first_new is not None:
                old = old.filter(seq__lt=first_new)
            last_seq = old.aggregate(m=Max("seq"))["m"]
            if last_seq is None:
                continue
            last = rows.get(seq=last_seq)
            checkpoint = (
                AuditCheckpoint.objects.using(alias)
                .select_for_update()
                .filter(chain_id=chain_id)
                .first()
            )
            if checkpoint is None:
                checkpoint = AuditCheckpoint(chain_id=chain_id, pruned=0)
            deleted, _ = rows.filter(seq__lte=last_seq).delete()
            checkpoint.seq, checkpoint.hash = last_seq, last.hash
            checkpoint.pruned += deleted
            checkpoint.updated_at = timezone.now()
            checkpoint.save(using=alias)
            deleted_total += deleted
            chains += 1
    return deleted_total, chains
