"""The non-repudiation audit log: one row per authentication decision, hash-chained.

The chaining, writing, verification and pruning logic is in :mod:`s2s_auth.audit`;
these are only the tables. Rows are never updated: ``AuditRecord`` is written with one
INSERT and read afterwards; ``AuditCheckpoint`` keeps, per chain, where a prune cut it.
"""

from __future__ import annotations

from django.db import models


class AuditRecord(models.Model):
    """One accepted or refused service request.

    ``principal`` is the SPIFFE ID as a string, not a foreign key: records outlive
    principals. ``credential`` holds a credential only when the caller signed it itself
    (a single-use self-signed JWT, an RFC 9421 ``Signature`` with ``signature_base``);
    a bearer access token is kept as ``claims`` + ``credential_hash``, never raw.
    ``(chain_id, seq, prev_hash, hash)`` place the row in its writer's hash chain
    (see :mod:`s2s_auth.audit`). ``id`` is a surrogate key and not part of the evidence.
    """

    ACCEPTED = "accepted"
    REFUSED = "refused"
    OUTCOMES = [(ACCEPTED, "accepted"), (REFUSED, "refused")]

    time = models.DateTimeField(db_index=True)
    mechanism = models.CharField(max_length=32, db_index=True)
    # outcome and principal are indexed by the (…, time) indexes below, whose first
    # column they are: an index of their own only cost every INSERT (migration 0007).
    principal = models.CharField(max_length=255, blank=True, help_text="SPIFFE ID of the caller.")
    end_user = models.CharField(max_length=255, blank=True)
    outcome = models.CharField(max_length=8, choices=OUTCOMES)
    reason = models.CharField(max_length=64, blank=True)
    detail = models.TextField(blank=True)
    method = models.CharField(max_length=16, blank=True)
    path = models.TextField(blank=True)
    body_digest = models.CharField(
        max_length=128, blank=True, help_text="RFC 9530 Content-Digest (sha-256) of the body."
    )
    client_address = models.CharField(max_length=64, blank=True)
    credential = models.TextField(
        blank=True, help_text="Self-signed JWT or RFC 9421 Signature field, as presented."
    )
    signature_base = models.TextField(blank=True, help_text="RFC 9421 signature base.")
    credential_hash = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 (hex) of a bearer token not stored raw."
    )
    claims = models.JSONField(default=dict, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True, db_index=True)
    certificate = models.TextField(
        blank=True, help_text="PEM of the certificate (chain) whose key verified it."
    )
    chain_id = models.CharField(max_length=32)
    seq = models.PositiveBigIntegerField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-time", "-id"]
        verbose_name = "audit record"
        constraints = [
            models.UniqueConstraint(fields=["chain_id", "seq"], name="s2s_audit_chain_seq"),
        ]
        indexes = [
            models.Index(fields=["outcome", "time"], name="s2s_audit_outcome_time"),
            models.Index(fields=["principal", "time"], name="s2s_audit_principal_time"),
        ]

    def __str__(self) -> str:
        who = self.principal or "-"
        return f"{self.outcome} {self.mechanism} {who} {self.method} {self.path}"


class AuditCheckpoint(models.Model):
    """Where ``s2s_audit prune`` cut a chain: the last deleted row's ``seq`` and ``hash``.

    Verification of the chain starts after it (the first kept row must be ``seq + 1``
    with ``prev_hash == hash``).
    """

    chain_id = models.CharField(max_length=32, unique=True)
    seq = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)
    pruned = models.PositiveBigIntegerField(default=0, help_text="Rows deleted so far.")
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = "audit checkpoint"

    def __str__(self) -> str:
        return f"{self.chain_id}@{self.seq}"


class AuditAcknowledgement(models.Model):
    """An operator's answer to an incident ``s2s_audit verify`` lists (a replay): who
    looked at it, when, and why it is closed. Nothing is deleted: ``verify`` keeps
    listing the incident, marked as acknowledged.

    The incident is named by the replaying record's ``hash`` (and the original's), not
    by the surrogate ``id``. Written with ``s2s_audit ack``, which also records the
    acknowledgement in the audit log itself.
    """

    REPLAY = "replay"
    KINDS = [(REPLAY, "replay")]

    kind = models.CharField(max_length=16, choices=KINDS, default=REPLAY)
    record_hash = models.CharField(max_length=64, help_text="Hash of the replaying record.")
    original_hash = models.CharField(
        max_length=64, blank=True, help_text="Hash of the record it replays."
    )
    record_id = models.BigIntegerField(help_text="Its id when acknowledged (for reading).")
    reason = models.TextField()
    acknowledged_by = models.CharField(max_length=255)
    acknowledged_at = models.DateTimeField()

    class Meta:
        ordering = ["-acknowledged_at", "-id"]
        verbose_name = "audit incident acknowledgement"
        constraints = [
            models.UniqueConstraint(fields=["kind", "record_hash"], name="s2s_audit_ack_once"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} record {self.record_id} acknowledged by {self.acknowledged_by}"
