"""The bytes a record's hash covers, and the hashes the audit log keeps.

Nothing here touches the database or a request: a third party re-implements this
module from ``s2s_audit export --help`` to check an exported record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from django.utils import timezone

__all__ = [
    "EXPORT_FIELDS",
    "GENESIS",
    "HASHED_FIELDS",
    "HASH_VERSION",
    "canonical",
    "compute_hash",
    "credential_hash",
    "iso_time",
    "row_dict",
]

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


#: The encoder of :func:`canonical` (built once: ``json.dumps`` with options builds one
#: per call), and its string quoting.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_encode = _ENCODER.encode
_quote = json.encoder.encode_basestring  # what _ENCODER quotes a str with
#: What _ENCODER writes for a value of exactly these types, without building its
#: iterator (the bulk of its cost for a scalar).
_BY_TYPE = {str: _quote, int: int.__repr__, dict: lambda v: _encode(v) if v else "{}"}
#: The hashed fields in sorted order (the version, ``"v"``, sorts after every one of
#: them: checked by the tests), and the canonical text with a ``%s`` for each value.
_ORDER = tuple(sorted(HASHED_FIELDS))
_SEQ, _TIME, _CERTIFICATE = _ORDER.index("seq"), _ORDER.index("time"), _ORDER.index("certificate")
_TEMPLATE = "{" + ",".join(_quote(name) + ":%s" for name in _ORDER) + f',"v":{HASH_VERSION}' + "}"


def iso_time(value: dt.datetime) -> str:
    """ISO 8601 in UTC with microseconds: how ``time`` is hashed and exported."""
    if value.tzinfo is dt.UTC:  # timezone.now()'s: astimezone() would return it as is
        return value.isoformat(timespec="microseconds")
    if timezone.is_naive(value):
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def canonical(row: dict[str, Any]) -> bytes:
    """The bytes a row's hash covers: sorted-key compact UTF-8 JSON of
    :data:`HASHED_FIELDS` (``time`` as ISO 8601 UTC with microseconds, ``seq`` as an
    integer, ``claims`` as a JSON object) plus ``"v": 1``.

    That is ``json.dumps({...}, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False, allow_nan=False)``; written out field by field here (the keys
    are fixed, so their order is too), with the same encoder for every value, because
    every audit record pays for it."""
    values = [row[name] for name in _ORDER]
    if isinstance(values[_TIME], dt.datetime):
        values[_TIME] = iso_time(values[_TIME])
    values[_SEQ] = int(values[_SEQ])
    certificate, values[_CERTIFICATE] = values[_CERTIFICATE], ""
    encoded = [_BY_TYPE.get(type(v), _encode)(v) for v in values]
    encoded[_CERTIFICATE] = _quoted_certificate(certificate)
    return (_TEMPLATE % tuple(encoded)).encode("utf-8")


#: The last certificate chain quoted, and its quoting: a caller's chain comes from
#: rows.certificate_chain()'s cache, the same str object request after request.
_last_certificate: tuple[object, str] = (object(), "")


def _quoted_certificate(value: Any) -> str:
    """``value`` as :func:`canonical` encodes it (a PEM chain is its longest value)."""
    global _last_certificate
    last, quoted = _last_certificate
    if value is last:
        return quoted
    quoted = _BY_TYPE.get(type(value), _encode)(value)
    if type(value) is str:  # immutable: the same object, the same text
        _last_certificate = (value, quoted)
    return quoted


def compute_hash(row: dict[str, Any]) -> str:
    """A row's ``hash``: SHA-256 (hex) of :func:`canonical`."""
    return hashlib.sha256(canonical(row)).hexdigest()


def credential_hash(token: str | bytes) -> str:
    """SHA-256 (hex) of a bearer token: what the audit log keeps instead of the token."""
    if isinstance(token, str):
        token = token.encode("utf-8")
    return hashlib.sha256(token).hexdigest()


def row_dict(record) -> dict[str, Any]:
    """A stored :class:`~s2s_auth.models.AuditRecord` as the dict the functions here take."""
    return {name: getattr(record, name) for name in (*HASHED_FIELDS, "hash", "id")}
