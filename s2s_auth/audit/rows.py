"""From a request and a :class:`~s2s_auth.audit.decision.Decision` to the stored fields
of a row (everything but the chain fields, which :mod:`s2s_auth.audit.chain` adds).

Values are cut to their column's length and cleaned the way the database will give
them back (no NUL, JSON round-tripped), so that the hash computed before the INSERT
still matches the row read afterwards.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import operator
import os
import sys
import threading
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.wsgi import LimitedStream
from django.http.request import RawPostDataException
from django.utils import timezone

from s2s_auth.audit.decision import Decision
from s2s_auth.conf import s2s_settings
from s2s_auth.core import httpsig
from s2s_auth.core.x509 import fingerprint

__all__ = ["build_row", "certificate_chain"]

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


def _clean(value: Any, limit: int | None = None) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL
    return text[:limit] if limit else text


#: The longest each text of :func:`_clean_texts` may be, in its order (None: any).
_TEXT_LIMITS = (
    _MAX_LENGTHS["mechanism"],
    _MAX_LENGTHS["principal"],
    _MAX_LENGTHS["end_user"],
    _MAX_LENGTHS["reason"],
    _MAX_DETAIL,
    _MAX_LENGTHS["method"],
    _MAX_PATH,
    _MAX_LENGTHS["client_address"],
    None,  # credential
    None,  # signature_base
    _MAX_LENGTHS["credential_hash"],
    _MAX_LENGTHS["fingerprint"],
)
_NO_LIMIT = sys.maxsize
_TEXT_MAX = tuple(_NO_LIMIT if limit is None else limit for limit in _TEXT_LIMITS)


def _clean_texts(values: tuple) -> tuple:
    """:func:`_clean` of each of ``values`` with its limit of ``_TEXT_LIMITS``. Usually
    there is nothing to clean (strings, no NUL, none too long): one check says so."""
    if (
        set(map(type, values)) == {str}
        and "\x00" not in "".join(values)
        and all(map(operator.le, map(len, values), _TEXT_MAX))
    ):
        return values
    return tuple(map(_clean, values, _TEXT_LIMITS))


#: ``json.dumps(value, default=str, ensure_ascii=False, allow_nan=False)``, built once.
_dumps = json.JSONEncoder(default=str, ensure_ascii=False, allow_nan=False).encode


def _clean_json(value: Any) -> Any:
    """``value`` as it will come back from the JSON column (so the hash stays valid)."""
    if value is None or (type(value) is dict and not value):
        return {}
    return json.loads(_dumps(value).replace("\\u0000", "\\ufffd"))


@functools.cache
def _empty_digest() -> str:
    """The digest of an empty body (every GET's): computed once."""
    return httpsig.content_digest(b"")


def _body_digest(request) -> str:
    cached = getattr(request, "_s2s_audit_body_digest", None)
    if cached is not None:
        return cached
    if _nothing_to_read(request):  # every GET: what request.body would give, unread
        return "" if getattr(request, "_read_started", True) else _empty_digest()
    try:
        body = request.body
    except (RawPostDataException, RequestDataTooBig, AttributeError, OSError):
        return ""  # consumed as a stream, too large, or not an HTTP request
    digest = httpsig.content_digest(body) if body else _empty_digest()
    with contextlib.suppress(AttributeError):  # exotic request objects
        request._s2s_audit_body_digest = digest
    return digest


def _nothing_to_read(request) -> bool:
    """A WSGI request whose body is not read yet and is empty for certain: Django reads
    it through a ``LimitedStream`` of ``Content-Length`` bytes, here 0 (absent)."""
    stream = getattr(request, "_stream", None)
    return type(stream) is LimitedStream and stream.limit == 0 and not hasattr(request, "_body")


_intermediates_lock = threading.Lock()
_intermediates_cache: dict[str, tuple[tuple[int, int], list[x509.Certificate]]] = {}


@functools.lru_cache(maxsize=16)
def _bundle_paths(anchors: str) -> tuple[str, str]:
    """The trust anchors bundle and the ``intermediates.pem`` next to it."""
    from s2s_auth.core.certs import INTERMEDIATES_FILE

    return anchors, str(Path(anchors).with_name(INTERMEDIATES_FILE))


def _known_intermediates() -> tuple[tuple, list[x509.Certificate]]:
    """CA certificates that are not self-signed: from the trust anchors bundle and the
    ``intermediates.pem`` next to it (cached by mtime; missing files: none); and the
    state of those files (what :func:`certificate_chain`'s cache depends on). Both
    files are looked at on every call: a changed bundle counts from the next record."""
    found: list[x509.Certificate] = []
    state: list = []
    for path in _bundle_paths(str(s2s_settings().trust_anchors_path)):
        try:
            stat = os.stat(path)
        except OSError:
            state.append((path, None))
            continue
        key = (stat.st_mtime_ns, stat.st_size)
        state.append((path, key))
        cached = _intermediates_cache.get(path)
        if cached is None or cached[0] != key:
            try:
                certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
            except (OSError, ValueError):
                certs = []
            cached = (key, [c for c in certs if c.issuer != c.subject])
            with _intermediates_lock:
                _intermediates_cache[path] = cached
        found.extend(cached[1])
    return tuple(state), found


#: certificate_chain's results by (PEM, state of the intermediates files): a caller
#: presents the same certificate on every request, and parsing it costs ~0.3 ms.
_CHAINS_MAX = 512
_chains: collections.OrderedDict[tuple, tuple[str, str]] = collections.OrderedDict()
_chains_lock = threading.Lock()


def certificate_chain(pem: str | bytes) -> tuple[str, str]:
    """(PEM of the certificates only, leaf first, completed with known intermediates;
    fingerprint of the leaf). Anything but certificates (a key!) is dropped."""
    if not pem:
        return "", ""
    state, known = _known_intermediates()
    key = (pem, state)
    with _chains_lock:
        found = _chains.get(key)
        if found is not None:
            _chains.move_to_end(key)
            return found
    found = _certificate_chain(pem, known)
    with _chains_lock:
        _chains[key] = found
        while len(_chains) > _CHAINS_MAX:
            _chains.popitem(last=False)
    return found


def _certificate_chain(pem: str | bytes, known: list[x509.Certificate]) -> tuple[str, str]:
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else bytes(pem)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        return "", ""
    while len(certs) < 8 and certs[-1].issuer != certs[-1].subject:
        issuer = next((c for c in known if c.subject == certs[-1].issuer), None)
        if issuer is None or issuer in certs:
            break
        certs.append(issuer)
    text = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs).decode("ascii")
    return text, fingerprint(certs[0])


def build_row(request, decision: Decision) -> dict[str, Any]:
    """The stored fields of one decision (everything but the chain fields)."""
    # A DRF request forwards each attribute to Django's: read that one directly.
    request = getattr(request, "_request", request)
    meta = getattr(request, "META", None) or {}
    certificate, leaf_fingerprint = certificate_chain(decision.certificate_pem)
    (
        mechanism,
        principal,
        end_user,
        reason,
        detail,
        method,
        path,
        client_address,
        credential,
        signature_base,
        credential_hash,
        fingerprint_,
    ) = _clean_texts(
        (
            decision.mechanism,
            decision.principal,
            decision.end_user,
            decision.reason,
            decision.detail,
            getattr(request, "method", ""),
            getattr(request, "path", ""),
            meta.get("REMOTE_ADDR", ""),
            decision.credential,
            decision.signature_base,
            decision.credential_hash,
            decision.fingerprint or leaf_fingerprint,
        )
    )
    return {
        "time": timezone.now(),
        "mechanism": mechanism,
        "principal": principal,
        "end_user": end_user,
        "outcome": decision.outcome,
        "reason": reason,
        "detail": detail,
        "method": method,
        "path": path,
        "body_digest": _body_digest(request) if request is not None else "",
        "client_address": client_address,
        "credential": credential,
        "signature_base": signature_base,
        "credential_hash": credential_hash,
        "claims": _clean_json(decision.claims),
        "fingerprint": fingerprint_,
        "certificate": certificate,
    }
