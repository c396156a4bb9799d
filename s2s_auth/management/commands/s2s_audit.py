"""``s2s_audit``: check, export and prune the non-repudiation audit log.

    python manage.py s2s_audit verify [--anchors CA.pem | --no-anchors] [--heads FILE]
    python manage.py s2s_audit export ID [ID ...] | --since ISO [--until ISO]
    python manage.py s2s_audit heads
    python manage.py s2s_audit ack ID [ID ...] --reason TEXT [--by NAME]
    python manage.py s2s_audit prune --older-than DAYS

``verify`` recomputes every record's hash, re-verifies every accepted record's stored
credential with its stored certificate (and the certificate's path to the trust anchors
at the record's time), checks that the record's method, path and time are what the
credential signed, and walks every chain; it exits 1 naming the first broken record
and why. It lists incidents: a credential accepted twice (found by iss + jti, keyid +
nonce or its normalised signature, whatever its bytes) is a replay of the earlier
record. The log is intact then, but ``verify`` exits 2 until every incident is
acknowledged; 0 with a summary otherwise.

``ack`` records that an operator looked into the incident of a replaying record, with
a reason and a name; nothing is deleted, ``verify`` lists the incident as
acknowledged, and the acknowledgement is itself an audit record.

``heads`` prints each chain's newest ``(seq, hash)`` as JSON lines. Keep that output
somewhere the database's writers cannot change (a log shipper, object storage with
retention): ``verify --heads FILE`` then also detects a deleted tail, which a hash chain
alone cannot.

``export`` prints one JSON object per line, checkable with nothing but the CA
certificate (no access to this service, its database or its code):

1. ``certificate`` is the PEM chain, leaf first. Validate the leaf's path to the CA
   certificate at ``time`` (e.g. ``cryptography.x509.verification``:
   ``PolicyBuilder().store(Store([ca])).time(time).build_client_verifier()
   .verify(leaf, intermediates)``) and check that its URI SAN equals ``principal``.
2. Without ``signature_base``, ``credential`` is the compact JWT the caller signed:
   verify its signature with the leaf's public key (ES256 for a P-256 key, EdDSA for
   Ed25519), e.g. ``jwt.decode(credential, leaf.public_key(), algorithms=["ES256"],
   options={"verify_exp": False, "verify_aud": False})`` (it has expired since), and
   check ``iss``/``sub`` against ``principal``.
3. With ``signature_base`` (RFC 9421), ``credential`` is the ``Signature`` field: its
   byte sequence is the signature over the ASCII bytes of ``signature_base`` with the
   algorithm named by ``alg`` in its last line (``ecdsa-p256-sha256``: ``r || s``,
   32 bytes each, over SHA-256).
4. ``hash`` is ``sha256(hash_input)``; ``hash_input`` is the sorted-key compact JSON of
   the record's fields with ``prev_hash`` and ``"v": 1``. Consecutive records of one
   ``chain_id`` link by ``prev_hash``.

``prune`` deletes, per chain, the records older than DAYS (a prefix of the chain) and
keeps a checkpoint of the last deleted hash, so ``verify`` keeps passing. It prints the
checkpoints it wrote as JSON lines with ``"checkpoint": true``: append them to the
anchored heads. A checkpoint row could be forged to explain away a deleted tail, so
``verify --heads`` accepts an anchored head that is gone only when an anchored
checkpoint line covers it.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from s2s_auth import audit
from s2s_auth.audit.anchors import Anchor, anchor_line, parse_anchors
from s2s_auth.conf import s2s_settings
from s2s_auth.management.subcommands import accept_global_options
from s2s_auth.models import AuditCheckpoint, AuditRecord


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in this environment
        return ""


def _when(value: str) -> dt.datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"Not an ISO 8601 date or date-time: {value!r}")
        parsed = dt.datetime.combine(day, dt.time())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


class Command(BaseCommand):
    help = __doc__

    def create_parser(self, prog_name, subcommand, **kwargs):
        from argparse import RawDescriptionHelpFormatter

        kwargs["formatter_class"] = RawDescriptionHelpFormatter
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        verify = sub.add_parser("verify", help="re-check every signature and every chain")
        anchors = verify.add_mutually_exclusive_group()
        anchors.add_argument(
            "--anchors",
            help="PEM trust anchors for the stored certificates (default: the configured "
            "TRUST_ANCHORS / PKI_DIR/ca.pem, when present)",
        )
        anchors.add_argument(
            "--no-anchors", action="store_true", help="do not check certificate paths"
        )
        verify.add_argument("--heads", help="file of anchored heads (output of `heads`)")

        export = sub.add_parser("export", help="records as JSON lines, for a third party")
        export.add_argument("ids", nargs="*", type=int, metavar="ID")
        export.add_argument("--since", help="records at or after this ISO 8601 time")
        export.add_argument("--until", help="records before this ISO 8601 time")

        sub.add_parser("heads", help="each chain's newest (seq, hash), as JSON lines")

        ack = sub.add_parser(
            "ack", help="acknowledge incidents `verify` lists, with a reason (deletes nothing)"
        )
        ack.add_argument("ids", nargs="+", type=int, metavar="ID", help="the replaying record")
        ack.add_argument("--reason", required=True, help="why the incident is closed")
        ack.add_argument("--by", help="who acknowledges it (default: the OS user)")

        prune = sub.add_parser("prune", help="delete old records, keep the chains verifiable")
        prune.add_argument("--older-than", type=float, required=True, metavar="DAYS")
        accept_global_options(sub)

    def handle(self, *args, action, **options):
        getattr(self, f"_{action}")(**options)

    # -- verify
    def _anchor_check(self, path: str | None, disabled: bool) -> audit.AnchorCheck | None:
        if disabled:
            return None
        configured = path is None
        path = path or str(s2s_settings().trust_anchors_path)
        try:
            return audit.AnchorCheck.from_file(path)
        except FileNotFoundError:
            if configured:
                self.stderr.write(f"No trust anchors at {path}: certificate paths not checked.")
                return None
            raise CommandError(f"No trust anchors file {path}") from None
        except ValueError as exc:
            raise CommandError(f"Cannot use trust anchors {path}: {exc}") from None

    def _verify(self, anchors=None, no_anchors=False, heads=None, **options):
        anchor_check = self._anchor_check(anchors, no_anchors)
        anchored = None
        if heads:
            try:
                with open(heads, encoding="utf-8") as fh:
                    anchored = parse_anchors(fh)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise CommandError(f"Cannot read anchored heads {heads}: {exc}") from None
        problem, summary = audit.verify_all(anchors=anchor_check, anchored_heads=anchored)
        for incident in summary.incidents:
            style = self.style.WARNING if incident.acknowledged else self.style.ERROR
            self.stdout.write(style(f"INCIDENT {incident}"))
        if problem is not None:
            raise CommandError(f"Audit log broken at {problem}")
        open_incidents = summary.open_incidents
        incidents = (
            f", {len(summary.incidents)} incidents ({len(open_incidents)} not acknowledged)"
            if summary.incidents
            else ""
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"OK: {summary.records} records in {summary.chains} chains, "
                f"{summary.signatures} signatures verified, "
                f"{summary.checkpoints} checkpoints"
                + (", certificate paths checked" if anchor_check else "")
                + (f", {len(anchored)} anchored heads present" if anchored else "")
                + incidents
                + "."
            )
        )
        if open_incidents:
            first = open_incidents[0]
            raise CommandError(
                f"{len(open_incidents)} incident(s) not acknowledged, first: record "
                f"{first.replay.id} replays record {first.original.id} ({first.kind}). The log "
                f"is intact; look into it, then `s2s_audit ack {first.replay.id} --reason TEXT`.",
                returncode=2,
            )

    # -- ack
    def _ack(self, ids, reason, by=None, **options):
        by = by or _os_user()
        _, summary = audit.verify_all()
        for record_id in ids:
            try:
                ack = audit.acknowledge(summary.incidents, record_id, reason=reason, by=by)
            except audit.IncidentError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(
                self.style.SUCCESS(
                    f"Acknowledged the {ack.kind} by record {record_id} ({ack.acknowledged_by})."
                )
            )

    # -- export
    def _export(self, ids=(), since=None, until=None, **options):
        if not ids and not since:
            raise CommandError("Give record IDs or --since.")
        queryset = AuditRecord.objects.order_by("time", "id")
        if ids:
            queryset = queryset.filter(id__in=ids)
            missing = set(ids) - set(queryset.values_list("id", flat=True))
            if missing:
                raise CommandError(f"No audit record {', '.join(map(str, sorted(missing)))}")
        if since:
            queryset = queryset.filter(time__gte=_when(since))
        if until:
            queryset = queryset.filter(time__lt=_when(until))
        out = self.stdout
        for record in queryset.iterator(chunk_size=500):
            out.write(json.dumps(audit.export_record(record), ensure_ascii=False))

    # -- heads
    def _heads(self, **options):
        for chain_id, (seq, hash_) in sorted(audit.heads().items()):
            self.stdout.write(anchor_line(Anchor(chain_id, seq, hash_)))

    # -- prune
    def _prune(self, older_than, **options):
        if older_than < 0:
            raise CommandError("--older-than must be >= 0 days")
        started = timezone.now()
        deleted, chains = audit.prune(dt.timedelta(days=older_than))
        self.stdout.write(
            self.style.SUCCESS(
                f"Deleted {deleted} records older than {older_than:g} days "
                f"from {chains} chains; checkpoints keep them verifiable."
            )
        )
        cut = AuditCheckpoint.objects.filter(updated_at__gte=started).order_by("chain_id")
        for checkpoint in cut:
            self.stdout.write(
                anchor_line(Anchor(checkpoint.chain_id, checkpoint.seq, checkpoint.hash, True))
            )
