"""Incidents: what the log faithfully records but an operator must look at.

A replay (one credential accepted twice, :mod:`s2s_auth.audit.replay`) does not break
the log — both records are genuine, the service accepted both — so ``verify`` lists it
as an incident rather than a broken record, naming the original (the earlier record)
and the replay. An operator closes it with a reason (:func:`acknowledge`,
``s2s_audit ack``); nothing is deleted, and the acknowledgement itself is recorded in
the audit log.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.db import router, transaction
from django.utils import timezone

from s2s_auth.audit.canonical import iso_time
from s2s_auth.audit.replay import Replay

__all__ = ["Incident", "IncidentError", "acknowledge", "incidents_for"]


class IncidentError(ValueError):
    """The record named is not an incident's replay, or the acknowledgement is invalid."""


@dataclasses.dataclass(frozen=True)
class Seen:
    """A record of an incident, as ``verify`` names it."""

    id: int
    hash: str
    time: dt.datetime
    chain_id: str
    seq: int
    method: str
    path: str
    principal: str

    def __str__(self) -> str:
        return (
            f"record {self.id} (chain {self.chain_id}, seq {self.seq}, {iso_time(self.time)}, "
            f"{self.principal or '-'} {self.method or '-'} {self.path or '-'})"
        )


@dataclasses.dataclass(frozen=True)
class Incident:
    """``replay`` accepted the credential ``original`` had accepted before."""

    kind: str
    original: Seen
    replay: Seen
    keys: tuple[str, ...]
    acknowledgement: object | None = None  # an AuditAcknowledgement

    @property
    def acknowledged(self) -> bool:
        return self.acknowledgement is not None

    def __str__(self) -> str:
        text = (
            f"{self.kind}: {self.replay} accepted a credential already accepted in "
            f"{self.original} [{'; '.join(self.keys)}]"
        )
        ack = self.acknowledgement
        if ack is None:
            return f"{text} -- NOT acknowledged (s2s_audit ack {self.replay.id} --reason ...)"
        return (
            f"{text} -- acknowledged by {ack.acknowledged_by} at "
            f"{iso_time(ack.acknowledged_at)}: {ack.reason}"
        )


def _seen(using: str | None, ids: set[int]) -> dict[int, Seen]:
    from s2s_auth.models import AuditRecord

    queryset = AuditRecord.objects.using(using) if using else AuditRecord.objects.all()
    fields = [f.name for f in dataclasses.fields(Seen)]
    return {row["id"]: Seen(**row) for row in queryset.filter(id__in=ids).values(*fields)}


def incidents_for(replays: list[Replay], using: str | None = None) -> list[Incident]:
    """The incidents of these replays, each with its acknowledgement (if any)."""
    from s2s_auth.models import AuditAcknowledgement

    if not replays:
        return []
    seen = _seen(using, {r.original.id for r in replays} | {r.replay.id for r in replays})
    acks = AuditAcknowledgement.objects.using(using) if using else AuditAcknowledgement.objects
    by_hash = {
        a.record_hash: a
        for a in acks.filter(kind="replay", record_hash__in=[s.hash for s in seen.values()])
    }
    found = []
    for replay in replays:
        original, again = seen[replay.original.id], seen[replay.replay.id]
        found.append(
            Incident(
                "replay", original, again, replay.keys, acknowledgement=by_hash.get(again.hash)
            )
        )
    return found


def acknowledge(
    incidents: list[Incident], record_id: int, *, reason: str, by: str, using: str | None = None
):
    """Record that ``by`` looked at the incident whose replay is ``record_id``, and why
    it is closed; store the acknowledgement and an audit event. Returns it."""
    from s2s_auth.audit.events import record_event
    from s2s_auth.models import AuditAcknowledgement

    reason, by = (reason or "").strip(), (by or "").strip()
    if not reason:
        raise IncidentError("An acknowledgement needs a reason.")
    if not by:
        raise IncidentError("An acknowledgement needs the name of who gives it.")
    incident = next((i for i in incidents if i.replay.id == record_id), None)
    if incident is None:
        originals = [i.replay.id for i in incidents if i.original.id == record_id]
        hint = f" (it is the original of record {originals[0]})" if originals else ""
        raise IncidentError(f"Record {record_id} is not the replay of an incident{hint}.")
    if incident.acknowledged:
        raise IncidentError(f"The incident of record {record_id} is already acknowledged.")
    alias = using or router.db_for_write(AuditAcknowledgement)
    with transaction.atomic(using=alias):
        ack = AuditAcknowledgement.objects.using(alias).create(
            kind=incident.kind,
            record_hash=incident.replay.hash,
            original_hash=incident.original.hash,
            record_id=incident.replay.id,
            reason=reason,
            acknowledged_by=by,
            acknowledged_at=timezone.now(),
        )
        record_event(
            "incident_acknowledged",
            mechanism="cli",
            actor=by,
            principal=incident.replay.principal,
            detail=f"{incident.kind} of record {incident.original.id} by record "
            f"{incident.replay.id}: {reason}",
            claims={
                "kind": incident.kind,
                "replay": {"id": incident.replay.id, "hash": incident.replay.hash},
                "original": {"id": incident.original.id, "hash": incident.original.hash},
                "reason": reason,
            },
        )
    return ack
