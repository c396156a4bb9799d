"""Non-repudiation audit: hash-chained :class:`~s2s_auth.models.AuditRecord` rows.

Writing
=======
:func:`s2s_auth.audit.events.record` calls :func:`record_decision` for every accepted and
refused request (when ``S2S_AUTH["AUDIT_ENABLED"]``). Each record is **one INSERT**:
no global head row is read or updated, no lock is taken.

*Accepted* records are written at once, in the current transaction: with
:class:`s2s_auth.audit.middleware.AuditMiddleware` (or ``ATOMIC_REQUESTS``) that is the
request's transaction, so a view that fails leaves no "accepted" record. *Refused*
records are deferred on the request when the middleware is installed and written after
the request's transaction has ended (DRF marks that transaction for rollback when it
handles the authentication error); without the middleware they are written at once.

The chain: one chain per writer
===============================
Every writer — a (process, thread, database alias) — owns a chain with a random
``chain_id`` (128 bits, new in every process and thread) and numbers its rows
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

Trade-off. No request ever waits for another, across threads, processes or hosts, and
the cost is one INSERT plus a SHA-256. In exchange there are many short chains rather
than one, so a verifier sees each writer's history separately:

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
  trustworthy as the database: anchored heads older than it cannot be re-checked.

The batch alternative (rows sealed into one global chain by a background step) gives one
chain and a cheap tail check, but leaves the newest rows unsealed until the next batch and
needs a single sealing process. Per-writer chains seal every row at once.

Verifying
=========
:func:`verify_all` (``s2s_audit verify``) recomputes each row's hash, re-verifies every
accepted record's stored credential with its stored certificate (a JWT's signature; an
RFC 9421 signature over the stored signature base), checks that the certificate names
the recorded principal, then walks every chain from ``seq = 1`` (or its checkpoint).
:func:`export_record` gives a JSON document that a third party can check with nothing
but the CA certificate (see ``s2s_audit export --help``).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import http_sf
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from django.core.exceptions import RequestDataTooBig
from django.db import connections, router, transaction
from django.http.request import RawPostDataException
from django.utils import timezone

from s2s_auth.conf import s2s_settings
from s2s_auth.core import httpsig
from s2s_auth.core import jose as tokens

__all__ = [
    "GENESIS",
    "HASHED_FIELDS",
    "Problem",
    "canonical",
    "compute_hash",
    "credential_hash",
    "decode_jwt_unverified",
    "export_record",
    "heads",
    "prune",
    "record_decision",
    "reset_writer_chains",
    "verify_all",
    "verify_credential",
]

logger = logging.getLogger("s2s_auth.audit")

#: ``prev_hash`` of a chain's first row.
GENESIS = "0" * 64
#: Version of the canonical serialization, part of what is hashed.
HASH_VERSION = 1
#: The stored fields the hash covers (all but the surrogate ``id`` and ``hash`` itself).
HASHED_FIELDS = (
    "chain_id",
    "seq",
    "prev_hash",
    "time",
    "mechanism",
    "principal",
    "end_user",
    "outcome",
    "reason",
    "detail",
    "method",
    "path",
    "body_digest",
    "client_address",
    "credential",
    "signature_base",
    "credential_hash",
    "claims",
    "fingerprint",
    "certificate",
)
#: Exported fields, in this order.
EXPORT_FIELDS = ("id", "hash", *HASHED_FIELDS)

_MAX_LENGTHS = {
    "mechanism": 32,
    "principal": 255,
    "end_user": 255,
    "reason": 64,
    "method": 16,
    "body_digest": 128,
    "client_address": 64,
    "credential_hash": 64,
    "fingerprint": 64,
}
_MAX_DETAIL = 2000
_MAX_PATH = 4000

# Attribute names on the (Django) request, set by AuditMiddleware.
PENDING_ATTR = "_s2s_audit_pending"  # list of deferred refusals (row dicts)
WRITTEN_ATTR = "_s2s_audit_written"  # list of _Pending tokens of rows written for it
# Set by the middleware on a read-only request: accepted rows are written after the
# view too (there are no view writes to share a transaction with).
DEFER_ACCEPTED_ATTR = "_s2s_audit_defer_accepted"


# ------------------------------------------------------------------ canonical form


def _iso(value: dt.datetime) -> str:
    if timezone.is_naive(value):
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def canonical(row: dict[str, Any]) -> bytes:
    """The bytes a row's hash covers: sorted-key compact UTF-8 JSON of
    :data:`HASHED_FIELDS` (``time`` as ISO 8601 UTC with microseconds, ``seq`` as an
    integer, ``claims`` as a JSON object) plus ``"v": 1``."""
    data = {name: row[name] for name in HASHED_FIELDS}
    if isinstance(data["time"], dt.datetime):
        data["time"] = _iso(data["time"])
    data["seq"] = int(data["seq"])
    data["v"] = HASH_VERSION
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def compute_hash(row: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()


def _sha256_hex(token: str | bytes) -> str:
    if isinstance(token, str):
        token = token.encode("utf-8")
    return hashlib.sha256(token).hexdigest()


def credential_hash(token: str | bytes) -> str:
    """SHA-256 (hex) of a bearer token: what the audit log keeps instead of the token."""
    return _sha256_hex(token)


def _row_dict(record) -> dict[str, Any]:
    return {name: getattr(record, name) for name in (*HASHED_FIELDS, "hash", "id")}


# ------------------------------------------------------------------ chain state


class _Chain:
    """A writer's chain: its id and committed head. Pending rows wait for a commit."""

    def __init__(self):
        self.pid = os.getpid()
        self.chain_id = secrets.token_hex(16)
        self.seq = 0
        self.hash = GENESIS
        self.pending: list[_Pending] = []


class _Pending:
    """A row written in an open transaction; called on commit (``on_commit``)."""

    __slots__ = ("chain", "done", "hash", "seq")

    def __init__(self, chain: _Chain, seq: int, hash: str):
        self.chain, self.seq, self.hash, self.done = chain, seq, hash, False

    def __call__(self) -> None:
        self.done = True
        if self.seq > self.chain.seq:
            self.chain.seq, self.chain.hash = self.seq, self.hash


_local = threading.local()


def _chain(alias: str) -> _Chain:
    chains = getattr(_local, "chains", None)
    if chains is None:
        chains = _local.chains = {}
    chain = chains.get(alias)
    if chain is None or chain.pid != os.getpid():  # a forked child starts its own chain
        chain = chains[alias] = _Chain()
    return chain


def reset_writer_chains() -> None:
    """Start new chains for this thread's next records (tests that empty the table)."""
    _local.chains = {}


def _alive(connection, token: _Pending) -> bool:
    """Is ``token`` still queued to run on commit (its row not rolled back)?"""
    return any(entry[1] is token for entry in connection.run_on_commit)


def _write(row: dict[str, Any]):
    """INSERT ``row`` as the next record of this writer's chain; return the record."""
    from s2s_auth.models import AuditRecord

    alias = router.db_for_write(AuditRecord)
    connection = connections[alias]
    chain = _chain(alias)
    if connection.in_atomic_block:
        chain.pending = [p for p in chain.pending if not p.done and _alive(connection, p)]
    else:
        chain.pending = []
    head = chain.pending[-1] if chain.pending else chain
    row = {**row, "chain_id": chain.chain_id, "seq": head.seq + 1, "prev_hash": head.hash}
    row["hash"] = compute_hash(row)
    record = AuditRecord(**row)
    record.save(using=alias, force_insert=True)
    token = _Pending(chain, row["seq"], row["hash"])
    chain.pending.append(token)
    transaction.on_commit(token, using=alias)  # runs now when in autocommit
    return record, token


# ------------------------------------------------------------------ building a row


def _clean(value: Any, limit: int | None = None) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL
    return text[:limit] if limit else text


def _clean_json(value: Any) -> Any:
    """``value`` as it will come back from the JSON column (so the hash stays valid)."""
    if value is None:
        return {}
    text = json.dumps(value, default=str, ensure_ascii=False, allow_nan=False)
    return json.loads(text.replace("\\u0000", "\\ufffd"))


def _body_digest(request) -> str:
    cached = getattr(request, "_s2s_audit_body_digest", None)
    if cached is not None:
        return cached
    try:
        body = request.body
    except (RawPostDataException, RequestDataTooBig, AttributeError, OSError):
        return ""  # consumed as a stream, too large, or not an HTTP request
    digest = httpsig.content_digest(body or b"")
    with contextlib.suppress(AttributeError):  # exotic request objects
        request._s2s_audit_body_digest = digest
    return digest


_intermediates_lock = threading.Lock()
_intermediates_cache: dict[str, tuple[tuple[int, int], list[x509.Certificate]]] = {}


def _known_intermediates() -> list[x509.Certificate]:
    """CA certificates that are not self-signed: from the trust anchors bundle and the
    ``intermediates.pem`` next to it (cached by mtime; missing files: none)."""
    from s2s_auth.core.certs import INTERMEDIATES_FILE

    anchors = s2s_settings().trust_anchors_path
    found: list[x509.Certificate] = []
    for path in (anchors, anchors.with_name(INTERMEDIATES_FILE)):
        try:
            stat = path.stat()
        except OSError:
            continue
        key = (stat.st_mtime_ns, stat.st_size)
        with _intermediates_lock:
            cached = _intermediates_cache.get(str(path))
        if cached is None or cached[0] != key:
            try:
                certs = x509.load_pem_x509_certificates(path.read_bytes())
            except (OSError, ValueError):
                certs = []
            cached = (key, [c for c in certs if c.issuer != c.subject])
            with _intermediates_lock:
                _intermediates_cache[str(path)] = cached
        found.extend(cached[1])
    return found


def _certificate_chain(pem: str | bytes) -> tuple[str, str]:
    """(PEM of the certificates only, leaf first, completed with known intermediates;
    fingerprint of the leaf). Anything but certificates (a key!) is dropped."""
    if not pem:
        return "", ""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else bytes(pem)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        return "", ""
    known = _known_intermediates()
    while len(certs) < 8 and certs[-1].issuer != certs[-1].subject:
        issuer = next((c for c in known if c.subject == certs[-1].issuer), None)
        if issuer is None or issuer in certs:
            break
        certs.append(issuer)
    text = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs).decode("ascii")
    fingerprint = hashlib.sha256(certs[0].public_bytes(serialization.Encoding.DER)).hexdigest()
    return text, fingerprint


def _is_bearer_token(credential: str) -> bool:
    """An OAuth access token (RFC 9068 ``typ: at+jwt``) must never be stored raw."""
    if credential.count(".") != 2:
        return False
    try:
        header = tokens.unverified_header(credential)
    except tokens.TokenError:
        return False
    typ = str(header.get("typ", "")).lower().removeprefix("application/")
    return typ == "at+jwt"


def build_row(
    request,
    *,
    mechanism: str,
    outcome: str,
    reason: str = "",
    detail: str = "",
    principal: str = "",
    end_user: Any = "",
    fingerprint: str = "",
    credential: str = "",
    signature_base: str = "",
    certificate_pem: str | bytes = "",
    claims: dict[str, Any] | None = None,
    credential_hash: str = "",
) -> dict[str, Any]:
    """The stored fields of one decision (everything but the chain fields)."""
    from s2s_auth.models import AuditRecord

    if outcome not in (AuditRecord.ACCEPTED, AuditRecord.REFUSED):
        raise ValueError(f"outcome must be 'accepted' or 'refused', not {outcome!r}")
    meta = getattr(request, "META", None) or {}
    credential = _clean(credential)
    token_hash = _clean(credential_hash, 64)
    if credential and _is_bearer_token(credential):
        logger.error("an access token was passed to the audit log raw; keeping its hash only")
        token_hash, credential = token_hash or _sha256_hex(credential), ""
    certificate, leaf_fingerprint = _certificate_chain(certificate_pem)
    return {
        "time": timezone.now(),
        "mechanism": _clean(mechanism, _MAX_LENGTHS["mechanism"]),
        "principal": _clean(principal, _MAX_LENGTHS["principal"]),
        "end_user": _clean(end_user, _MAX_LENGTHS["end_user"]),
        "outcome": outcome,
        "reason": _clean(reason, _MAX_LENGTHS["reason"]),
        "detail": _clean(detail, _MAX_DETAIL),
        "method": _clean(getattr(request, "method", ""), _MAX_LENGTHS["method"]),
        "path": _clean(getattr(request, "path", ""), _MAX_PATH),
        "body_digest": _body_digest(request) if request is not None else "",
        "client_address": _clean(meta.get("REMOTE_ADDR", ""), _MAX_LENGTHS["client_address"]),
        "credential": credential,
        "signature_base": _clean(signature_base),
        "credential_hash": token_hash,
        "claims": _clean_json(claims),
        "fingerprint": _clean(fingerprint or leaf_fingerprint, _MAX_LENGTHS["fingerprint"]),
        "certificate": certificate,
    }


def record_decision(request, **fields: Any) -> None:
    """Persist one decision (called by :func:`s2s_auth.audit.events.record`).

    Accepted: written now, in the current transaction. Refused: deferred to
    :class:`~s2s_auth.audit.middleware.AuditMiddleware` when it handles this request, else
    written now.
    """
    row = build_row(request, **fields)
    pending = getattr(request, PENDING_ATTR, None) if request is not None else None
    deferred = row["outcome"] == "refused" or getattr(request, DEFER_ACCEPTED_ATTR, False)
    if deferred and pending is not None:
        pending.append(row)
        return
    _, token = _write(row)
    written = getattr(request, WRITTEN_ATTR, None) if request is not None else None
    if written is not None:
        written.append(token)


def write_row(row: dict[str, Any]):
    """Write a row built by :func:`build_row` (the middleware's deferred refusals)."""
    return _write(row)[0]


def survived(tokens_: Iterable[_Pending], alias: str | None = None) -> bool:
    """Did any of these rows commit, or are they still alive in an open transaction?"""
    from s2s_auth.models import AuditRecord

    connection = connections[alias or router.db_for_write(AuditRecord)]
    return any(t.done or _alive(connection, t) for t in tokens_)


# ------------------------------------------------------------------ verification


def decode_jwt_unverified(token: str) -> tuple[dict, dict] | None:
    """(header, payload) of a compact JWS, decoded without trusting it; None if it is
    not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, payload = (
            json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2]
        )
    except ValueError:
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    return header, payload


def _signature_members(credential: str) -> list[bytes]:
    """The signatures in a stored RFC 9421 ``Signature`` field (or a bare base64 one)."""
    try:
        parsed = http_sf.parse(credential.encode("ascii"), tltype="dictionary")
    except Exception:  # not a dictionary: maybe bare base64
        parsed = None
    if isinstance(parsed, dict) and parsed:
        return [m[0] for m in parsed.values() if isinstance(m, tuple) and isinstance(m[0], bytes)]
    try:
        return [base64.b64decode(credential.strip().strip(":"), validate=True)]
    except ValueError:
        return []


def _signature_params_alg(signature_base: str) -> str | None:
    last = signature_base.rsplit("\n", 1)[-1]
    prefix = '"@signature-params": '
    if not last.startswith(prefix):
        return None
    try:
        _, params = http_sf.parse(last[len(prefix) :].encode("ascii"), tltype="item")
    except Exception:  # malformed: no alg to read
        return None
    alg = params.get("alg")
    return alg if isinstance(alg, str) else None


def verify_credential(credential: str, signature_base: str, certificate_pem: str) -> str | None:
    """Does the stored credential verify with the stored certificate's public key?

    An RFC 9421 signature (``signature_base`` given) over that base; a JWT's signature
    otherwise (claims such as ``exp`` are not re-checked: they were checked when the
    request came in). None when it verifies, else the reason.
    """
    if not credential:
        return "no credential stored"
    if not certificate_pem:
        return "no certificate stored"
    try:
        leaf = x509.load_pem_x509_certificates(certificate_pem.encode("ascii"))[0]
        public_key = leaf.public_key()
    except (ValueError, UnicodeError) as exc:
        return f"stored certificate unreadable: {exc}"
    if signature_base:
        try:
            alg = _signature_params_alg(signature_base) or httpsig.algorithm_for_key(public_key)
        except httpsig.SignatureError as exc:
            return f"key not usable: {exc.detail}"
        algorithm = httpsig.SUPPORTED_ALGORITHMS.get(alg)
        if algorithm is None:
            return f"unsupported signature algorithm {alg!r}"
        try:
            verifier = algorithm(public_key=public_key)
        except Exception as exc:  # the library refuses this key type
            return f"key does not fit {alg}: {exc}"
        message = signature_base.encode("ascii", "replace")
        for signature in _signature_members(credential):
            try:
                verifier.verify(signature, message)
                return None
            except Exception:  # noqa: S112 - any failure: try the next member
                continue
        return "RFC 9421 signature does not verify over the stored signature base"
    try:
        tokens.verify_jws(credential, public_key, algorithms=sorted(tokens.SUPPORTED_ALGORITHMS))
    except tokens.TokenError as exc:
        return f"JWT signature does not verify: {exc.code}"
    except (TypeError, ValueError) as exc:
        return f"JWT cannot be checked: {exc}"
    return None


def _certificate_names(certificate_pem: str, principal: str) -> str | None:
    try:
        leaf = x509.load_pem_x509_certificates(certificate_pem.encode("ascii"))[0]
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except (ValueError, UnicodeError, x509.ExtensionNotFound):
        uris = []
    if principal not in uris:
        return f"certificate does not name principal {principal}"
    return None


class AnchorCheck:
    """Path validation of stored certificates to trust anchors at the record's time
    (``cryptography.x509.verification``). A validated path is remembered with the time
    window in which all its certificates are valid."""

    def __init__(self, anchors: list[x509.Certificate]):
        if not anchors:
            raise ValueError("no trust anchors")
        self.store = Store(anchors)
        self._ok: dict[str, tuple[dt.datetime, dt.datetime]] = {}

    @classmethod
    def from_file(cls, path) -> AnchorCheck:
        certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
        return cls([c for c in certs if c.issuer == c.subject])

    def __call__(self, certificate_pem: str, when: dt.datetime) -> str | None:
        window = self._ok.get(certificate_pem)
        if window and window[0] <= when <= window[1]:
            return None
        try:
            certs = x509.load_pem_x509_certificates(certificate_pem.encode("ascii"))
        except (ValueError, UnicodeError) as exc:
            return f"stored certificate unreadable: {exc}"
        try:
            verifier = PolicyBuilder().store(self.store).time(when).build_client_verifier()
            verified = verifier.verify(certs[0], certs[1:])
        except VerificationError as exc:
            return f"certificate does not chain to the trust anchors at {_iso(when)}: {exc}"
        path = list(verified.chain)
        self._ok[certificate_pem] = (
            max(c.not_valid_before_utc for c in path),
            min(c.not_valid_after_utc for c in path),
        )
        return None


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
    records: int = 0
    chains: int = 0
    signatures: int = 0
    checkpoints: int = 0
    heads: dict[str, tuple[int, str]] = dataclasses.field(default_factory=dict)


def check_row(row: dict[str, Any], anchors: AnchorCheck | None = None) -> str | None:
    """A row's own integrity: its hash; for an accepted record the stored credential
    (verifies with the stored certificate), the certificate (names the principal,
    chains to ``anchors`` at the record's time). None when fine, else why not."""
    expected = compute_hash(row)
    if expected != row["hash"]:
        return f"hash mismatch: content hashes to {expected}, stored {row['hash']}"
    if row["outcome"] != "accepted":
        return None
    if row["credential"]:
        failure = verify_credential(row["credential"], row["signature_base"], row["certificate"])
        if failure:
            return failure
    if row["certificate"]:
        if row["principal"]:
            failure = _certificate_names(row["certificate"], row["principal"])
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
    anchored_heads: dict[str, tuple[int, str]] | None = None,
) -> tuple[Problem | None, Summary]:
    """Check every record and every chain; return (first problem or None, summary).

    First each row on its own (:func:`check_row`), reporting the failing row with the
    lowest ``id`` (so an edited row is the one named even when it also breaks its
    chain); a self-signed credential stored in two accepted records is a failure too (the
    replay cache refuses a second use, so one of them is forged). Then every chain is
    walked from ``seq = 1`` or from its checkpoint. With ``anchored_heads``
    (``{chain_id: (seq, hash)}`` from ``s2s_audit heads``), each such head must still be
    there unchanged, or lie before the chain's checkpoint.
    """
    from s2s_auth.models import AuditCheckpoint

    checkpoints_qs = AuditCheckpoint.objects.using(using) if using else AuditCheckpoint.objects
    checkpoints = {c.chain_id: (c.seq, c.hash) for c in checkpoints_qs.all()}
    summary = Summary(checkpoints=len(checkpoints))
    own: Problem | None = None
    link: Problem | None = None
    chain_id, expect_seq, expect_prev, prev_id = None, 0, GENESIS, None
    stored: dict[str, dict[int, str]] = {}
    want = anchored_heads or {}
    seen_credentials: dict[str, int] = {}

    for row in _records(using):
        summary.records += 1
        failure = check_row(row, anchors)
        if not failure and row["outcome"] == "accepted" and row["credential"]:
            digest = _sha256_hex(row["credential"])
            first = seen_credentials.setdefault(digest, row["id"])
            if first != row["id"]:
                failure = f"its credential was already accepted in record {first} (a replay)"
        if failure and (own is None or row["id"] < own.record_id):
            own = Problem(row["id"], row["chain_id"], row["seq"], failure)
        if row["outcome"] == "accepted" and row["credential"] and not failure:
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

    if own is not None:
        return own, summary
    if link is not None:
        return link, summary
    for anchored_chain, (seq, expected_hash) in sorted(want.items()):
        checkpoint_seq, checkpoint_hash = checkpoints.get(anchored_chain, (0, GENESIS))
        if seq < checkpoint_seq:
            continue  # pruned past it
        if seq == checkpoint_seq:
            actual = checkpoint_hash
        else:
            actual = stored.get(anchored_chain, {}).get(seq)
        if actual != expected_hash:
            why = (
                "the anchored head is missing: the chain's tail was deleted"
                if actual is None
                else f"the anchored head has hash {expected_hash}, the stored one {actual}"
            )
            return Problem(None, anchored_chain, seq, why), summary
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


# ------------------------------------------------------------------ export, prune


def export_record(record) -> dict[str, Any]:
    """A record as a JSON-able dict with everything a third party needs (see the
    ``s2s_audit export`` help): the credential, the certificate chain, the chain fields
    and the exact hash input."""
    row = _row_dict(record)
    out = {name: row[name] for name in EXPORT_FIELDS}
    out["time"] = _iso(row["time"])
    out["hash_version"] = HASH_VERSION
    out["hash_input"] = canonical(row).decode("utf-8")
    return out


def prune(older_than: dt.timedelta, *, using: str | None = None) -> tuple[int, int]:
    """Delete, per chain, the prefix of rows older than ``older_than``; keep a checkpoint
    (the last deleted ``seq`` and ``hash``) so that the chain stays verifiable.

    Returns (rows deleted, chains cut). Only a prefix is ever deleted: a row newer than
    the cutoff stops the cut of its chain, whatever its neighbours' times.
    """
    from django.db.models import Max

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
