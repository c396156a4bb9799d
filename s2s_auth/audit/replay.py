"""What identifies a stored self-signed credential, whatever bytes encode it.

Two accepted records of one credential mean the service accepted it twice (a replay
the jti/nonce store let through) or that one of them was copied in. Comparing the raw
credential is not enough: an ECDSA signature (r, s) verifies as (r, n - s) too, so a
re-encoded copy of the same credential verifies with another hash. So every credential
is named by

* what its signer made single-use: ``iss`` + ``jti`` of a JWT, ``keyid`` + ``nonce`` of
  an RFC 9421 signature (read from the signed content, after it verified);
* its signature value, decoded, with an ECDSA signature normalised to low S
  (``s = min(s, n - s)``) and DER-encoded by ``cryptography``.

A key shared by two records makes the later one (by time, then id) a replay of the
earlier one: :class:`ReplayIndex`.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from s2s_auth.audit.evidence import decode_jwt_unverified, signature_members, signature_params
from s2s_auth.core.ecdsa import low_s_der

__all__ = ["Replay", "ReplayIndex", "RowRef", "credential_keys", "low_s"]

#: The audit names a signature by its low-S DER form (one helper with the replay store).
low_s = low_s_der


def _curve_of(certificate_pem: str) -> str | None:
    try:
        key = x509.load_pem_x509_certificates(certificate_pem.encode("ascii"))[0].public_key()
    except (ValueError, UnicodeError, IndexError):
        return None
    return key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else None


def _signature_key(signature: bytes, curve: str | None) -> str:
    value = low_s(signature, curve) if curve else signature
    return "signature sha-256=" + hashlib.sha256(value).hexdigest()


def _b64url(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return None


def credential_keys(credential: str, signature_base: str, certificate_pem: str) -> list[str]:
    """The names of a stored credential (see the module docstring). Only meaningful for
    a credential that verified: the single-use values are read without a check."""
    if not credential:
        return []
    curve = _curve_of(certificate_pem) if certificate_pem else None
    keys: list[str] = []
    if signature_base:
        params = signature_params(signature_base) or {}
        keyid, nonce = params.get("keyid"), params.get("nonce")
        if isinstance(keyid, str) and isinstance(nonce, str):
            keys.append(f"keyid={keyid!r} nonce={nonce!r}")
        keys.extend(_signature_key(s, curve) for s in signature_members(credential))
        return keys
    decoded = decode_jwt_unverified(credential)
    if decoded is not None:
        payload = decoded[1]
        iss, jti = payload.get("iss"), payload.get("jti")
        if isinstance(iss, str) and isinstance(jti, str) and jti:
            keys.append(f"iss={iss!r} jti={jti!r}")
    parts = credential.split(".")
    signature = _b64url(parts[2]) if len(parts) == 3 else None
    if signature:
        keys.append(_signature_key(signature, curve))
    return keys


@dataclasses.dataclass(frozen=True, order=True)
class RowRef:
    """Where a credential was seen: ordered by time, then id (the original comes first)."""

    time: dt.datetime
    id: int
    chain_id: str = dataclasses.field(default="", compare=False)
    seq: int = dataclasses.field(default=0, compare=False)


@dataclasses.dataclass(frozen=True)
class Replay:
    """``replay`` accepted a credential that ``original`` had accepted before."""

    original: RowRef
    replay: RowRef
    keys: tuple[str, ...]


class ReplayIndex:
    """Keys seen so far (as 16-byte digests, one small entry per key); labels are kept
    only for the keys seen twice."""

    def __init__(self):
        self._seen: dict[bytes, RowRef | list[RowRef]] = {}
        self._labels: dict[bytes, str] = {}

    def add(self, ref: RowRef, keys: Iterable[str]) -> None:
        for key in keys:
            digest = hashlib.sha256(key.encode("utf-8")).digest()[:16]
            before = self._seen.setdefault(digest, ref)
            if before is ref:
                continue
            if isinstance(before, RowRef):
                before = self._seen[digest] = [before]
            before.append(ref)
            self._labels[digest] = key

    def replays(self) -> list[Replay]:
        """Every record sharing a key with an earlier one, named against the earliest."""
        found: dict[int, tuple[RowRef, RowRef, set[str]]] = {}
        for digest, label in self._labels.items():
            first, *later = sorted(set(self._seen[digest]))
            for ref in later:
                original, _, keys = found.setdefault(ref.id, (first, ref, set()))
                if first < original:
                    found[ref.id] = (first, ref, keys)
                keys.add(label)
        return [
            Replay(original, replay, tuple(sorted(keys)))
            for original, replay, keys in sorted(found.values(), key=lambda item: item[1])
        ]
