"""The bottom layer of JOSE: :class:`TokenError` and strict decoding of untrusted text.

Shared by :mod:`s2s_auth.core.jose` (compact JWS) and :mod:`s2s_auth.core.jwk` (keys):
canonical unpadded base64url (RFC 7515 §2) and UTF-8 JSON objects without duplicate
member names or NaN/Infinity (RFC 7515 §5.2, RFC 8259).
"""

from __future__ import annotations

import binascii
import json
import re
from typing import Any

from jwt.utils import base64url_decode, base64url_encode

from s2s_auth.errors import S2SError

__all__ = ["TokenError", "b64url_decode_strict", "b64url_encode", "strict_json_object"]

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class TokenError(S2SError):
    """A token, key or key set was refused. ``code`` is a stable snake_case reason.

    Codes: ``malformed_token``, ``token_too_large``, ``algorithm_not_allowed``,
    ``forbidden_header``, ``unknown_key``, ``invalid_key``, ``unsupported_key``,
    ``weak_key``, ``private_key_material``, ``key_not_for_signing``,
    ``duplicate_key_id``, ``bad_signature``, ``expired``, ``not_yet_valid``,
    ``issued_in_future``, ``lifetime_too_long``, ``wrong_audience``,
    ``wrong_issuer``, ``wrong_subject``, ``missing_claim``, ``invalid_claim``,
    ``wrong_type``.
    """

    def __init__(self, code: str, detail: str = ""):
        super().__init__(code, detail or code.replace("_", " "))


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64url_encode(data).decode("ascii")


def b64url_decode_strict(segment: str, what: str) -> bytes:
    """Strict, canonical base64url without padding (RFC 7515 §2)."""
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise TokenError("malformed_token", f"{what} is not unpadded base64url")
    try:
        decoded = base64url_decode(segment)
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - regex excludes it
        raise TokenError("malformed_token", f"{what} is not base64url") from exc
    # Non-zero unused trailing bits ("AB" vs "AA") decode to the same bytes: refuse,
    # so that exactly one encoding of a signature/payload exists.
    if b64url_encode(decoded) != segment:
        raise TokenError("malformed_token", f"{what} is not canonical base64url")
    return decoded


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"duplicate member name {name!r}")
        result[name] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def strict_json_object(data: bytes, what: str) -> dict[str, Any]:
    """UTF-8 JSON object, no duplicate names, no NaN/Infinity (RFC 7515 §5.2, 8259)."""
    try:
        text = data.decode("utf-8")
        value = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise TokenError("malformed_token", f"{what} is not a valid JSON object") from exc
    if not isinstance(value, dict):
        raise TokenError("malformed_token", f"{what} is not a JSON object")
    return value
