"""Client secrets and service-account registration (no HTTP here).

Generated secrets are 256-bit random strings, stored as HMAC-SHA256 keyed from
``SECRET_KEY`` with Django's ``salted_hmac`` (key salt :data:`SECRET_SALT`), and
compared with ``constant_time_compare``. Secrets hashed under a key listed in
``SECRET_KEY_FALLBACKS`` still verify, so ``SECRET_KEY`` can be rotated the Django
way. A password a service chose itself at registration is not random enough for a
fast hash: it gets Django's password hasher instead.

The token endpoint reads a client's secrets through the per-process principal cache
(:func:`cached_secrets_of`, bounded staleness like every credential there): saving,
deleting or expiring a secret (rotation, the admin) invalidates it in every process,
an expiry date is checked on every use, and anything that bypasses signals is seen
within ``PRINCIPAL_CACHE_SECONDS``.

A registration password costs Django's hasher (a quarter of a second of CPU) per
check: a *successful* check is remembered in the same cache, for the same bound, under
an HMAC of (client, presented password, stored hash) keyed by a random per-process
key, never the password. A wrong password is never remembered: it pays the hasher
every time, behind the lock-out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from s2s_auth.conf import s2s_settings
from s2s_auth.core.certs import VerifiedPeer
from s2s_auth.credentials.cache import invalidate, principal_cache
from s2s_auth.identity import spiffe_id
from s2s_auth.issuer.models import ClientSecret
from s2s_auth.models import ServiceCertificate, ServicePrincipal, validate_service_name

__all__ = [
    "SECRET_SALT",
    "AlreadyRegistered",
    "ClientSecretBackend",
    "active_secrets_of",
    "cached_secrets_of",
    "check_secret",
    "create_secret",
    "generate_secret",
    "hmac_digest",
    "match_secret",
    "register_service",
    "rotate_secret",
    "validate_registration_password",
]

SECRET_SALT = "s2s_auth.issuer.ClientSecret"  # noqa: S105 - an HMAC key salt
SECRET_BYTES = 32  # 256 bits
MAX_SECRET_LENGTH = 1024


class AlreadyRegistered(Exception):
    pass


def generate_secret() -> str:
    """A fresh 256-bit client secret, base64url (43 characters)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def hmac_digest(secret: str, key: str | None = None) -> str:
    return salted_hmac(SECRET_SALT, secret, secret=key, algorithm="sha256").hexdigest()


def _digests(secret: str) -> list[str]:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [hmac_digest(secret, key) for key in keys]


def create_secret(
    principal: ServicePrincipal, *, expires_at: dt.datetime | None = None
) -> tuple[ClientSecret, str]:
    """A new generated secret for ``principal``: the row and the secret (show it once)."""
    secret = generate_secret()
    row = ClientSecret.objects.create(
        principal=principal,
        algorithm=ClientSecret.HMAC,
        digest=hmac_digest(secret),
        expires_at=expires_at,
    )
    return row, secret


@transaction.atomic
def rotate_secret(
    principal: ServicePrincipal, *, grace: dt.timedelta | None = None
) -> tuple[ClientSecret, str]:
    """A new secret; the old ones stay valid for ``grace`` (at most; None:
    ``S2S_AUTH["SECRET_ROTATION_GRACE"]`` seconds), then expire."""
    if grace is None:
        grace = dt.timedelta(seconds=float(s2s_settings().SECRET_ROTATION_GRACE))
    now = timezone.now()
    until = now + grace
    active = ClientSecret.objects.select_for_update().active(now).filter(principal=principal)
    active.filter(expires_at__isnull=True).update(expires_at=until)
    active.filter(expires_at__gt=until).update(expires_at=until)
    invalidate()  # an UPDATE sends no signal: cached secrets expire everywhere now
    return create_secret(principal)


class ClientSecretBackend:
    """The issuer's client secrets as the core's ``SecretBackend`` (installed in ready())."""

    def create(self, principal: ServicePrincipal) -> str:
        return create_secret(principal)[1]

    def rotate(self, principal: ServicePrincipal, *, grace: dt.timedelta) -> str:
        return rotate_secret(principal, grace=grace)[1]

    def active_count(self, principal: ServicePrincipal) -> int:
        return ClientSecret.objects.active().filter(principal=principal).count()


def check_secret(principal: ServicePrincipal, presented: str) -> bool:
    """Does ``presented`` match one of the principal's active secrets?"""
    rows = ClientSecret.objects.active().filter(principal=principal)
    return match_secret(rows.order_by().only("algorithm", "digest"), presented)


def match_secret(rows, presented: str, *, client_id: str = "") -> bool:
    """Does ``presented`` match one of ``rows`` (ClientSecret)? Constant-time compares.
    With ``client_id``, a password's successful hasher check is remembered
    (:func:`checked_password`)."""
    if not presented or len(presented) > MAX_SECRET_LENGTH:
        return False
    rows = list(rows)
    if not rows:
        return False
    digests = _digests(presented)
    for row in rows:
        if row.algorithm == ClientSecret.HMAC:
            matched = False
            for digest in digests:  # no early exit between keys
                matched |= constant_time_compare(row.digest, digest)
            if matched:
                return True
    return any(
        checked_password(client_id, presented, row.digest)
        for row in rows
        if row.algorithm == row.DJANGO
    )


#: Keys this process's remembered password checks: random, never stored or shared.
_CHECK_KEY = secrets.token_bytes(32)


def checked_password(client_id: str, presented: str, encoded: str) -> bool:
    """``check_password(presented, encoded)``; with ``client_id``, a success is
    remembered in the principal cache (its bound, its invalidation) under an HMAC of
    (client id, password, stored hash), so a rotation or a new hash is a new key."""
    if not client_id:
        return check_password(presented, encoded)
    message = "\0".join((client_id, presented, encoded)).encode("utf-8", "surrogatepass")
    tag = hmac.new(_CHECK_KEY, message, hashlib.sha256).hexdigest()
    remembered = principal_cache.get(
        ("password_ok", tag),
        lambda: True if check_password(presented, encoded) else None,
        cache_none=False,  # a wrong password is never remembered
    )
    return remembered is True


def active_secrets_of(name: str):
    """The active secrets of the principal named ``name``, principal joined (one query)."""
    return (
        ClientSecret.objects.active()
        .filter(principal__name=name)
        .select_related("principal")
        .only(
            "algorithm",
            "digest",
            "principal__id",
            "principal__name",
            "principal__spiffe_id",
            "principal__enabled",
            "principal__scopes",
        )
        .order_by()
    )


def cached_secrets_of(name: str) -> list[ClientSecret]:
    """:func:`active_secrets_of` through the principal cache, still active now.

    Only a client that has secrets is cached (``name`` is what the caller claims: made-up
    names must not fill the cache). The rows and their principal are shared by requests:
    read them, never change or save them.
    """
    rows = principal_cache.get(
        ("client_secrets", name), lambda: list(active_secrets_of(name)) or None, cache_none=False
    )
    if not rows:
        return []
    now = timezone.now()
    return [row for row in rows if row.is_active(now)]


def validate_registration_password(name: str, password: str) -> None:
    """ValidationError unless ``password`` is long and not derived from the name."""
    minimum = int(s2s_settings().MIN_PASSWORD_LENGTH)
    if not isinstance(password, str) or len(password) < minimum:
        raise ValidationError(f"The password must have at least {minimum} characters.")
    if len(password) > MAX_SECRET_LENGTH:
        raise ValidationError(f"The password must have at most {MAX_SECRET_LENGTH} characters.")
    if len(set(password)) < 6:
        raise ValidationError("The password repeats too few different characters.")
    if name and name.lower() in password.lower():
        raise ValidationError("The password must not contain the service name.")
    validate_password(password)  # the project's AUTH_PASSWORD_VALIDATORS


def register_service(
    name: str, *, password: str | None = None, peer: VerifiedPeer | None = None
) -> ServicePrincipal:
    """Create an enabled principal with *no* scopes and its credential(s), marked
    ``self_registered``: an operator must approve it before granting scopes.

    Raises ValidationError for a bad name or password, AlreadyRegistered when the
    name is taken. ``peer`` (a verified certificate) must name the same service.
    """
    validate_service_name(name)
    if password is not None:
        validate_registration_password(name, password)
    if peer is not None and peer.service_name != name:
        raise ValidationError("The certificate's SPIFFE ID names another service.")
    if password is None and peer is None:
        raise ValidationError("A password or a client certificate is needed.")
    try:
        with transaction.atomic():
            if ServicePrincipal.objects.filter(name=name).exists():
                raise AlreadyRegistered(name)
            principal = ServicePrincipal.objects.create(
                name=name,
                spiffe_id=spiffe_id(name),
                scopes="",
                description="self-registered",
                self_registered=True,
            )
            if password is not None:
                ClientSecret.objects.create(
                    principal=principal,
                    algorithm=ClientSecret.DJANGO,
                    digest=make_password(password),
                )
            if peer is not None:
                if ServiceCertificate.objects.filter(fingerprint=peer.fingerprint).exists():
                    raise AlreadyRegistered(name)
                ServiceCertificate.objects.create(
                    principal=principal,
                    fingerprint=peer.fingerprint,
                    serial=f"{peer.serial:x}",
                    not_after=peer.not_after,
                    pem=peer.leaf.public_bytes(Encoding.PEM).decode("ascii"),
                )
    except IntegrityError:
        raise AlreadyRegistered(name) from None
    return principal
