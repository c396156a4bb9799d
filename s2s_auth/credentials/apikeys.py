"""API key service functions: create, check, revoke. No requests, no DRF.

Plaintext format: ``<API_KEY_PREFIX>_<key_id>_<secret>`` where ``key_id`` is 16
lowercase hex digits and ``secret`` 43 base64url characters (256 random bits). The
prefix (``S2S_AUTH["API_KEY_PREFIX"]``, no ``_`` allowed in it) makes leaked keys easy
for secret scanners to spot; ``key_id`` contains no ``_``, so the split is unambiguous.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from s2s_auth.audit.changes import record_change
from s2s_auth.conf import s2s_settings
from s2s_auth.credentials.cache import invalidate, principal_cache
from s2s_auth.errors import S2SError
from s2s_auth.models import APIKey, ServicePrincipal

__all__ = [
    "LAST_USED_RESOLUTION",
    "MAX_KEY_LENGTH",
    "APIKeyError",
    "check_key",
    "create_key",
    "hash_secret",
    "new_key_material",
    "parse_key",
    "revoke_key",
]

MAX_KEY_LENGTH = 200
#: ``last_used_at`` is written at most this often per key (not on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)
_KEY_ID_RE = r"[0-9a-f]{16}"
_SECRET_RE = r"[A-Za-z0-9_-]{43}"  # noqa: S105 - a pattern, not a secret
# A fixed hash compared against when the key id is unknown, so that the unknown and
# the wrong-secret paths do the same work.
_DUMMY_HASH = hashlib.sha256(b"s2s-auth-unknown-api-key").hexdigest()


class APIKeyError(S2SError):
    """A presented key was refused. ``code``: ``malformed_api_key``,
    ``unknown_api_key`` (no such key id, or a wrong secret), ``api_key_expired``,
    ``api_key_revoked``. ``key_id`` is set once it was parsed."""

    def __init__(self, code: str, detail: str, *, key_id: str = ""):
        super().__init__(code, detail)
        self.key_id = key_id


def _prefix() -> str:
    prefix = s2s_settings().API_KEY_PREFIX
    if not prefix or "_" in prefix or not re.fullmatch(r"[A-Za-z0-9-]+", prefix):
        raise ValueError("S2S_AUTH['API_KEY_PREFIX'] must be letters, digits or '-' (no '_').")
    return prefix


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def new_key_material() -> tuple[str, str, str]:
    """A fresh ``(key_id, secret, plaintext)``."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return key_id, secret, f"{_prefix()}_{key_id}_{secret}"


def parse_key(plaintext: object) -> tuple[str, str]:
    """``(key_id, secret)`` of a well-formed key, else ``APIKeyError("malformed_api_key")``."""
    if not isinstance(plaintext, str) or len(plaintext) > MAX_KEY_LENGTH:
        raise APIKeyError("malformed_api_key", "Not an API key of this service.")
    match = re.fullmatch(
        rf"{re.escape(_prefix())}_({_KEY_ID_RE})_({_SECRET_RE})", plaintext, flags=re.ASCII
    )
    if not match:
        raise APIKeyError("malformed_api_key", "Not an API key of this service.")
    return match.group(1), match.group(2)


def create_key(
    principal: ServicePrincipal, *, expires_days: float | None = None, description: str = ""
) -> tuple[APIKey, str]:
    """Create a key for ``principal``; the plaintext is returned here and never again."""
    key_id, secret, plaintext = new_key_material()
    expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
    key = APIKey.objects.create(
        principal=principal,
        key_id=key_id,
        secret_hash=hash_secret(secret),
        expires_at=expires_at,
        description=description,
    )
    record_change("apikey_created", [key], expires_days=expires_days)
    return key, plaintext


def check_key(plaintext: object, *, touch: bool = True) -> APIKey:
    """The ``APIKey`` row of a valid, unexpired, unrevoked key (principal loaded).

    The secret is compared (constant time) before the key's state is revealed, so a
    key id alone tells a caller nothing. The principal's ``enabled`` flag is the
    caller's to check. ``touch`` updates ``last_used_at`` (at most once a minute).

    The row comes from the principal cache and is shared with other requests: read it,
    don't change it (``last_used_at`` excepted, which only paces its own UPDATE).
    """
    key_id, secret = parse_key(plaintext)
    # Cached (hash, state, principal) for a known key id only: unknown ids are anybody's
    # to make up, so they are never cached (s2s_auth.credentials.cache).
    row = principal_cache.get(("api_key", key_id), lambda: _load(key_id), cache_none=False)
    presented = hash_secret(secret)
    if row is None:
        hmac.compare_digest(presented, _DUMMY_HASH)
        raise APIKeyError("unknown_api_key", "Unknown API key.", key_id=key_id)
    if not hmac.compare_digest(presented, row.secret_hash):
        raise APIKeyError("unknown_api_key", "Unknown API key.", key_id=key_id)
    now = timezone.now()
    if row.revoked_at is not None:
        raise APIKeyError("api_key_revoked", f"API key {key_id} was revoked.", key_id=key_id)
    if row.is_expired(now):
        raise APIKeyError("api_key_expired", f"API key {key_id} has expired.", key_id=key_id)
    if touch and (row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION):
        # Conditional, so concurrent workers don't all write in the same minute.
        APIKey.objects.filter(pk=row.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
        row.last_used_at = now
    return row


def _load(key_id: str) -> APIKey | None:
    return APIKey.objects.select_related("principal").filter(key_id=key_id).first()


def revoke_key(key_id_or_prefix: str) -> int:
    """Revoke by key id, ``<prefix>_<key_id>`` or the full plaintext; the count revoked."""
    value = key_id_or_prefix.strip()
    prefix = _prefix() + "_"
    if value.startswith(prefix):
        value = value[len(prefix) :]
    key_id = value.split("_", 1)[0]
    if not re.fullmatch(_KEY_ID_RE, key_id):
        return 0
    count = APIKey.objects.filter(key_id=key_id, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if count:
        invalidate()  # an UPDATE sends no signal: refused everywhere now, not in 2 s
        record_change("apikey_revoked", APIKey.objects.filter(key_id=key_id))
    return count
