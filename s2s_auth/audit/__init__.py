"""Non-repudiation audit: hash-chained :class:`~s2s_auth.models.AuditRecord` rows.

Modules, one job each
=====================
``decision``   :class:`Decision`, the one record type of an authentication decision
``events``     :func:`record`: log a decision and store it (the mechanisms' one call);
               :func:`record_event` for issuance and operators' changes
``rows``       request + Decision -> stored fields (cleaning, body digest, certificate chain)
``chain``      per-writer chain state; a row or batch chained and written
               (:func:`reset_writer_chains`)
``insert``     the INSERT: plain rows, one multi-row statement built from the model's meta
``writer``     where a record goes (:func:`~s2s_auth.audit.writer.store`); the background
               writer thread (:func:`flush`)
``group``      group commit: concurrent requests share one INSERT and commit
``canonical``  the hashed form: :func:`canonical`, :func:`compute_hash`, :func:`credential_hash`
``evidence``   a row's credential and certificate re-checked (:func:`verify_credential`)
``replay``     what identifies a credential (iss + jti, keyid + nonce, low-S signature)
``binding``    a row's method, path and time against what its credential signed
``anchors``    externally anchored heads and checkpoints (``verify --heads``)
``verify``     :func:`verify_all`, :func:`check_row`, :func:`heads`
``export``     :func:`export_record`, :func:`prune`
``incidents``  replays listed by ``verify``, closed with a reason (:func:`acknowledge`)
``middleware`` :class:`~s2s_auth.audit.middleware.AuditMiddleware` (import it from there)

Writing
=======
:func:`s2s_auth.audit.events.record` calls :func:`record_decision` for every accepted and
refused request (when ``S2S_AUTH["AUDIT_ENABLED"]``). No global head row is read or
updated, no lock is taken; where a row goes is :func:`s2s_auth.audit.writer.store`'s
decision:

* *In the request's transaction*: the accepted record of a state-changing request
  (POST, PUT, PATCH, DELETE, ...; an event without a request) and any record written
  while a transaction is open on the audit database. With
  :class:`s2s_auth.audit.middleware.AuditMiddleware` (or ``ATOMIC_REQUESTS``) that is
  the request's transaction, so a view that fails leaves no "accepted" record. One
  INSERT, in the request's thread.
* *Batched* (:mod:`~s2s_auth.audit.writer`): the accepted record of a GET, HEAD or
  OPTIONS request (written after the view, only if it succeeded) and every refusal
  (deferred on the request while the middleware's transaction is open: DRF marks it
  for rollback when it handles the authentication error). ``S2S_AUTH["AUDIT_WRITE"]``
  says how:

  ``"group_commit"`` (default, :mod:`~s2s_auth.audit.group`)
      the request answers after its row has committed. The rows of requests that
      arrive while one commit runs share the next one (one bulk INSERT, one
      transaction), written by the first of those requests onto the process's group
      chain; a request alone writes its own row, with no thread switch.
  ``"background"``
      the request answers at once; one writer thread per process writes what is queued
      (one bulk INSERT per batch, on its own connection, onto its own chain) when
      ``AUDIT_BATCH_SIZE`` rows are queued or the oldest has waited
      ``AUDIT_FLUSH_INTERVAL`` seconds (default 0.05).
  ``"sync"``
      after its own INSERT in the request's thread, as every record was before.

What a crash can lose
---------------------
A row stored in the request's transaction commits with it: nothing. With
``"group_commit"``, nothing the service answered: a request whose worker dies before
its batch commits gets no answer either (its row may still have committed: rows can
outnumber answers, never the reverse); a batch that cannot be written makes each of its
requests write its own row, and fail (500) if that fails too. With ``"background"``, a
process killed without its exit handlers (``kill -9``, the OOM killer, a power cut)
loses the rows it had queued and not yet committed: at most ``AUDIT_QUEUE_SIZE`` rows
plus the batch being written, in practice the last ``AUDIT_FLUSH_INTERVAL`` seconds of
its GET/HEAD/OPTIONS and refused requests. A normal stop (SIGTERM to gunicorn,
``sys.exit``) writes the queue first (``atexit`` and gunicorn's ``worker_exit`` hook in
:mod:`s2s_auth.tls.gunicorn_conf`); a database that is down or locked loses nothing
(the batch stays queued and is retried with backoff); a full queue makes the request
wait (``AUDIT_QUEUE_TIMEOUT``), then write its row itself. Tests call
:func:`s2s_auth.audit.flush` before they read rows written in ``"background"`` mode.

The chain: one chain per writer
===============================
Every writer — a (process, thread, database alias), the process's group commit and its
background writer thread — owns a chain with a random ``chain_id`` (128 bits, new in
every process and thread) and numbers its rows
``seq = 1, 2, 3, …``. Each row stores ``prev_hash`` (the hash of the chain's previous
row; 64 zeros for ``seq = 1``) and ``hash = sha256(canonical(row))``, where
``canonical`` is the sorted-key compact UTF-8 JSON of every stored field except the
surrogate ``id`` (see :data:`HASHED_FIELDS` and :func:`canonical`).

The writer keeps its chain head in memory (a thread-local). The head advances only
when the transaction holding the row **commits** (``transaction.on_commit``): a row
rolled back with its request (or its savepoint) leaves no gap, and the next row reuses
its ``seq`` and ``prev_hash``. Rows written inside a still-open transaction are
"pending": the next row of the same transaction chains onto the newest pending row that
is still alive (its on-commit callback still queued), so nested savepoints work too.

Trade-off. No request ever waits for another across processes or hosts (within a
process, group commit lets requests share one commit), and the cost
is one INSERT plus a SHA-256 per row, or a share of a batch. In exchange there are many
short chains rather than one, so a verifier sees each writer's history separately:

* an edited row (any column but the surrogate ``id``) no longer matches its own
  ``hash``: detected, and named;
* an inserted (forged) row either does not fit any chain's sequence/``prev_hash`` links,
  or duplicates ``(chain_id, seq)`` (refused by a unique constraint), or starts a chain
  that does not begin at ``seq = 1``: detected, unless the forger re-creates a whole
  new chain from ``seq = 1`` — a hash chain without a secret cannot tell who wrote it;
  what makes a forged *accepted* record worthless is that its stored credential must
  still verify with its stored certificate (``s2s_audit verify``);
* a deleted row in the middle of a chain leaves a ``seq`` gap and a broken
  ``prev_hash`` link: detected;
* a deleted **tail** (the newest rows of a chain, or a whole chain) is not detectable
  from the table alone — true of any hash chain kept where the attacker writes. The
  mitigation is external anchoring: ``s2s_audit heads`` prints every chain's head
  (``chain_id``, ``seq``, ``hash``); ship that line somewhere append-only (syslog,
  object storage with retention) regularly, and ``s2s_audit verify --heads FILE``
  checks that each anchored head still exists unchanged (or was pruned past).
* pruning deletes a prefix of each chain and keeps an :class:`AuditCheckpoint` (the last
  deleted ``seq`` and ``hash``); verification resumes from it. A checkpoint is as
  trustworthy as the database, so it cannot vouch for itself: ``prune`` prints the
  checkpoints it wrote, to be anchored like the heads, and an anchored head that is no
  longer stored passes only when an *anchored* checkpoint covers it
  (:mod:`~s2s_auth.audit.anchors`).

The batch alternative (rows sealed into one global chain by a background step) gives one
chain and a cheap tail check, but leaves the newest rows unsealed until the next batch and
needs a single sealing process. Per-writer chains seal every row as it is written; a
batch is sealed in the same transaction that stores it.

Verifying
=========
:func:`verify_all` (``s2s_audit verify``) recomputes each row's hash, re-verifies every
accepted record's stored credential with its stored certificate (a JWT's signature; an
RFC 9421 signature over the stored signature base), checks that the row's method, path
and time are what the credential signed (:mod:`~s2s_auth.audit.binding`) and that the
certificate names the recorded principal, then walks every chain from ``seq = 1`` (or
its checkpoint).
:func:`export_record` gives a JSON document that a third party can check with nothing
but the CA certificate (see ``s2s_audit export --help``).
"""

from __future__ import annotations

from s2s_auth.audit.canonical import (
    GENESIS,
    HASHED_FIELDS,
    canonical,
    compute_hash,
    credential_hash,
    row_dict,
)
from s2s_auth.audit.chain import reset_writer_chains, survived
from s2s_auth.audit.decision import Decision
from s2s_auth.audit.events import record, record_decision, record_event
from s2s_auth.audit.evidence import (
    AnchorCheck,
    certificate_names,
    decode_jwt_unverified,
    verify_credential,
)
from s2s_auth.audit.export import export_record, prune
from s2s_auth.audit.incidents import Incident, IncidentError, acknowledge
from s2s_auth.audit.rows import build_row
from s2s_auth.audit.verify import Problem, Summary, check_row, heads, verify_all
from s2s_auth.audit.writer import flush

__all__ = [
    "GENESIS",
    "HASHED_FIELDS",
    "AnchorCheck",
    "Decision",
    "Incident",
    "IncidentError",
    "Problem",
    "Summary",
    "acknowledge",
    "build_row",
    "canonical",
    "certificate_names",
    "check_row",
    "compute_hash",
    "credential_hash",
    "decode_jwt_unverified",
    "export_record",
    "flush",
    "heads",
    "prune",
    "record",
    "record_decision",
    "record_event",
    "reset_writer_chains",
    "row_dict",
    "survived",
    "verify_all",
    "verify_credential",
]
