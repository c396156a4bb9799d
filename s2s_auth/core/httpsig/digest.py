"""RFC 9530 ``Content-Digest``: computed for a body, checked against one."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import http_sf

from s2s_auth.core.httpsig.errors import SignatureError

__all__ = ["check_content_digest", "content_digest", "reject_duplicate"]

_DIGESTS: dict[str, Callable[[bytes], Any]] = {
    "sha-256": hashlib.sha256,
    "sha-512": hashlib.sha512,
}


def reject_duplicate(key: str, context: str) -> None:
    # Structured Fields say "last one wins"; in a signature or digest header a duplicate
    # is either a mistake or an attempt to make two parsers disagree.
    raise ValueError(f"duplicate {context} key {key!r}")


def content_digest(body: bytes, algorithm: str = "sha-256") -> str:
    """The RFC 9530 ``Content-Digest`` value of ``body``, e.g. ``sha-256=:base64:``.

    Computed for an empty body too (a digest of ``b""``)."""
    if algorithm not in _DIGESTS:
        raise ValueError(f"unsupported digest algorithm {algorithm!r} (sha-256, sha-512)")
    return http_sf.ser({algorithm: (_DIGESTS[algorithm](bytes(body)).digest(), {})})


def check_content_digest(header_value: str | None, body: bytes) -> tuple[str, ...]:
    """Check a ``Content-Digest`` field value against ``body``; return the algorithms checked.

    Every ``sha-256`` / ``sha-512`` member must match; members with other algorithms are
    ignored, but at least one supported member is required. Raises ``SignatureError``:
    ``missing_digest`` (absent/empty, or only unknown algorithms), ``digest_mismatch``
    (malformed, wrong length, or a different body).
    """
    if header_value is None or not header_value.strip():
        raise SignatureError("missing_digest", "no Content-Digest header")
    try:
        members = http_sf.parse(
            header_value.encode("ascii"), tltype="dictionary", on_duplicate_key=reject_duplicate
        )
    except Exception as exc:  # untrusted input: any parser failure is "malformed"
        raise SignatureError("digest_mismatch", "malformed Content-Digest header") from exc
    if not isinstance(members, dict) or not members:
        raise SignatureError("missing_digest", "empty Content-Digest header")
    checked = []
    for algorithm, member in members.items():
        if algorithm not in _DIGESTS:
            continue
        value = member[0] if isinstance(member, tuple) else None
        if not isinstance(value, bytes):
            raise SignatureError("digest_mismatch", f"{algorithm} digest is not a byte sequence")
        expected = _DIGESTS[algorithm](bytes(body)).digest()
        if len(value) != len(expected):
            raise SignatureError("digest_mismatch", f"{algorithm} digest has the wrong length")
        if not hmac.compare_digest(value, expected):
            raise SignatureError("digest_mismatch", f"{algorithm} digest does not match the body")
        checked.append(algorithm)
    if not checked:
        raise SignatureError(
            "missing_digest",
            f"no supported digest algorithm in Content-Digest ({', '.join(sorted(_DIGESTS))})",
        )
    return tuple(checked)
