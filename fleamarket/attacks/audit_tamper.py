"""Attacks on UserService's audit log by someone who can read or write its database.

Each runs as one ``manage.py shell`` script against the live service's database.
Writes happen inside a transaction that is always rolled back, so the run leaves the
log as it was (and the later cells' proofs intact): the forged state is checked by
``s2s_audit verify`` in that same transaction.
"""

from __future__ import annotations

import json

from .results import Probe

MARK = "ATTACK-RESULT "

#: Find ``secrets`` (name → text) in every text column of the audit table.
SCAN = """
import json
from s2s_auth.models import AuditRecord
secrets = json.loads({secrets!r})
fields = [f.attname for f in AuditRecord._meta.concrete_fields]
hits = {{}}
for row in AuditRecord.objects.values_list(*fields).iterator():
    for field, value in zip(fields, row):
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        for name, secret in secrets.items():
            if secret in text:
                hits.setdefault(name, []).append(field)
print({mark!r} + json.dumps({{"rows": AuditRecord.objects.count(), "hits": hits}}))
"""

#: Delete every record, forge a checkpoint at each anchored head, verify; roll back.
FORGED_CHECKPOINT = """
import datetime as dt, io, json, tempfile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import router, transaction
from s2s_auth.models import AuditCheckpoint, AuditRecord
def verify(*args):
    try:
        call_command("s2s_audit", "verify", "--no-anchors", *args,
                     stdout=io.StringIO(), stderr=io.StringIO())
        return "passes"
    except CommandError as exc:
        return str(exc)
out = io.StringIO()
call_command("s2s_audit", "heads", stdout=out)
heads = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
anchored = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)
anchored.write(out.getvalue()); anchored.close()
with transaction.atomic(using=router.db_for_write(AuditRecord)):
    before = verify("--heads", anchored.name)
    deleted, _ = AuditRecord.objects.all().delete()
    for head in heads:
        AuditCheckpoint.objects.update_or_create(
            chain_id=head["chain_id"],
            defaults=dict(seq=head["seq"], hash=head["hash"], pruned=head["seq"],
                          updated_at=dt.datetime.now(dt.UTC)))
    table_alone = verify()
    with_heads = verify("--heads", anchored.name)
    transaction.set_rollback(True)
print({mark!r} + json.dumps(dict(heads=len(heads), deleted=deleted, before=before,
                                 table_alone=table_alone, with_heads=with_heads)))
"""

#: Append a perfectly chained copy of the accepted record holding ``original``, with
#: the malleated ``copy`` as credential (and ``changes``: another method and path where
#: the credential does not sign them); verify; roll back.
MALLEATED_COPY = """
import io, json
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import router, transaction
from s2s_auth import audit
from s2s_auth.models import AuditRecord
original, copy, changes = {original!r}, {copy!r}, json.loads({changes!r})
record = AuditRecord.objects.filter(outcome="accepted", credential__contains=original).latest("id")
with transaction.atomic(using=router.db_for_write(AuditRecord)):
    head = AuditRecord.objects.filter(chain_id=record.chain_id).order_by("-seq").first()
    row = audit.row_dict(record)
    row.update(seq=head.seq + 1, prev_hash=head.hash,
               credential=record.credential.replace(original, copy), **changes)
    row["hash"] = audit.compute_hash(row)
    forged = AuditRecord(**{{k: v for k, v in row.items() if k != "id"}})
    forged.save(force_insert=True)
    try:
        call_command("s2s_audit", "verify", "--no-anchors", stdout=io.StringIO(),
                     stderr=io.StringIO())
        message = "passes"
    except CommandError as exc:
        message = str(exc)
    transaction.set_rollback(True)
print({mark!r} + json.dumps(dict(original=record.id, forged=forged.id, message=message)))
"""


def run_script(deployment, template: str, **values) -> dict:
    """Run ``template`` (formatted with ``values``) in UserService's ``manage.py shell``."""
    script = template.format(mark=MARK, **values)
    result = deployment.manage("users", "shell", "-c", script)
    line = next(x for x in result.stdout.splitlines() if x.startswith(MARK))
    return json.loads(line.removeprefix(MARK))


def scan_table(deployment, secrets: dict[str, str]) -> dict:
    """Which of ``secrets`` appear in the audit table, and in which columns."""
    return run_script(deployment, SCAN, secrets=json.dumps(secrets))


def forged_checkpoint(deployment) -> list[Probe]:
    result = run_script(deployment, FORGED_CHECKPOINT)
    if result["before"] != "passes" or not result["heads"]:
        raise RuntimeError(f"verify --heads failed before any forgery: {result}")
    label = (
        f"{result['deleted']} records deleted, a checkpoint forged at each of "
        f"{result['heads']} anchored head(s)"
    )
    caught = result["with_heads"] != "passes"
    reason = "verify_heads_failed" if caught else "verify_passed"
    return [
        Probe(f"{label}: verify --heads", not caught, "verify", reason, result["with_heads"][:160]),
    ]


def malleated_copy(deployment, original: str, copy: str, label: str, **changes) -> Probe:
    """Forge ``copy`` (a malleated ``original``) into the log as another record (with
    ``changes``, e.g. ``method``, ``path``); ``verify`` must name it a replay."""
    result = run_script(
        deployment, MALLEATED_COPY, original=original, copy=copy, changes=json.dumps(changes)
    )
    expected = f"record {result['forged']} replays record {result['original']}"
    caught = expected in result["message"]
    reason = "replay_detected" if caught else "not_detected"
    detail = expected if caught else result["message"][:160]
    return Probe(label, not caught, "verify", reason, detail)


__all__ = ["forged_checkpoint", "malleated_copy", "run_script", "scan_table"]
