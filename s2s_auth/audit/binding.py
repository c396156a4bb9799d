"""Does a record describe the request its credential signed?

A verified credential proves what its signer signed, not that it belongs to the row it
is stored in: a forger could copy it next to another method, path or time. So an
accepted record's method, path and time are compared with the signed content:

* a JWT: ``iat``/``exp`` around the record's time (``CLOCK_SKEW`` of slack), ``aud``
  naming this service (when its identity is configured); a JWT does not cover the
  method or the path (the replay check names a copy: :mod:`s2s_auth.audit.replay`);
* an RFC 9421 signature: ``@method``, ``@path`` and the path of ``@target-uri`` equal
  to the record's, ``created`` at most ``HTTPSIG_MAX_AGE`` (+ skew) before the record,
  ``expires`` not before it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from django.utils.encoding import repercent_broken_unicode

from s2s_auth.audit.evidence import decode_jwt_unverified, signature_params

__all__ = ["Binding", "check_binding"]

_MAX_PATH = 4000  # the path column keeps this much (s2s_auth.audit.rows)
_MAX_METHOD = 16


@dataclasses.dataclass(frozen=True)
class Binding:
    """What a record's time is allowed to be off by, and who the audience is."""

    audiences: frozenset[str] = frozenset()
    skew: float = 30
    max_age: float = 300

    @classmethod
    def from_settings(cls) -> Binding:
        from s2s_auth.conf import s2s_settings

        conf = s2s_settings()
        own = conf.own_spiffe_id
        return cls(
            audiences=frozenset([own] if own else []),
            skew=float(conf.CLOCK_SKEW),
            max_age=float(conf.HTTPSIG_MAX_AGE),
        )


def _timestamp(value: dt.datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _check_jwt(row: dict[str, Any], policy: Binding) -> str | None:
    decoded = decode_jwt_unverified(row["credential"])
    if decoded is None:
        return None  # not a JWT: verify_credential has said so already
    claims = decoded[1]
    when = _timestamp(row["time"])
    exp, iat = _number(claims.get("exp")), _number(claims.get("iat"))
    if exp is None:
        return "the credential has no numeric exp: its time cannot be checked"
    if when > exp + policy.skew:
        return f"recorded at {when:.0f}, after the credential expired (exp {exp:.0f})"
    if iat is not None and when < iat - policy.skew:
        return f"recorded at {when:.0f}, before the credential was issued (iat {iat:.0f})"
    if policy.audiences:
        aud = claims.get("aud")
        values = aud if isinstance(aud, list) else [aud]
        if not policy.audiences.intersection(v for v in values if isinstance(v, str)):
            return f"the credential is for audience {aud!r}, not this service"
    return None


def _components(signature_base: str) -> dict[str, str]:
    """``{"@method": "POST", ...}``: the lines of a signature base without parameters."""
    found = {}
    for line in signature_base.split("\n")[:-1]:
        name, sep, value = line.partition('": ')
        if sep and name.startswith('"') and ";" not in name:
            found.setdefault(name[1:], value)
    return found


def _request_path(signed: str) -> str:
    """The path as Django gives it (``request.path``) for a path as signed (escaped)."""
    return repercent_broken_unicode(unquote_to_bytes(signed)).decode("utf-8")[:_MAX_PATH]


def _check_signature(row: dict[str, Any], policy: Binding) -> str | None:
    signed = _components(row["signature_base"])
    method = signed.get("@method")
    if method is not None and method[:_MAX_METHOD] != row["method"]:
        return f"the signature covers method {method}, the record says {row['method']}"
    paths = []
    if "@path" in signed:
        paths.append(signed["@path"])
    if "@target-uri" in signed:
        paths.append(urlsplit(signed["@target-uri"]).path or "/")
    for path in paths:
        if _request_path(path) != row["path"]:
            return f"the signature covers path {path}, the record says {row['path']}"
    params = signature_params(row["signature_base"]) or {}
    when = _timestamp(row["time"])
    created, expires = _number(params.get("created")), _number(params.get("expires"))
    if created is None:
        return "the signature has no created time: its time cannot be checked"
    if not created - policy.skew <= when <= created + policy.max_age + policy.skew:
        return f"recorded at {when:.0f}, the signature was created at {created:.0f}"
    if expires is not None and when > expires + policy.skew:
        return f"recorded at {when:.0f}, after the signature expired ({expires:.0f})"
    return None


def check_binding(row: dict[str, Any], policy: Binding) -> str | None:
    """None when an accepted record's method, path and time fit what its (verified)
    credential signed; else why not."""
    if not row["credential"]:
        return None
    if row["signature_base"]:
        return _check_signature(row, policy)
    return _check_jwt(row, policy)
