"""Service-principal administration, shared by the management command and the admin.

Client secrets go through a :class:`SecretBackend` that an optional app registers
(``s2s_auth.issuer`` does): the core never imports that app.

A principal that registered itself (``self_registered``) could have been created by
anyone who reached the registration endpoint first, under the name an operator meant
for a real service. No scope is granted to it unless the operator says so
(``approve=True``, ``--approve-self-registered``): then it is marked approved.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol, runtime_checkable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from s2s_auth.audit.changes import record_change
from s2s_auth.conf import s2s_settings
from s2s_auth.credentials.cache import principal_cache
from s2s_auth.identity import spiffe_id
from s2s_auth.models import ServicePrincipal, validate_scopes, validate_service_name


class PrincipalError(ValueError):
    pass


def get_principal(name: str) -> ServicePrincipal:
    try:
        return ServicePrincipal.objects.get(name=name)
    except ServicePrincipal.DoesNotExist:
        raise PrincipalError(f"No service principal named {name!r}.") from None


def cached_principal(name: str) -> ServicePrincipal | None:
    """The principal named ``name`` (None: unknown) through the principal cache
    (:mod:`s2s_auth.credentials.cache`): what authentication reads on every request.
    The instance is shared by requests: read it, never change or save it."""
    return principal_cache.get(("principal", name), lambda: _load_principal(name))


def _load_principal(name: str) -> ServicePrincipal | None:
    return (
        ServicePrincipal.objects.only("id", "name", "spiffe_id", "enabled", "scopes")
        .filter(name=name)
        .first()
    )


class NotApproved(PrincipalError):
    """Scopes for a self-registered principal without the operator's approval."""

    def __init__(self, name: str):
        super().__init__(
            f"{name!r} registered itself at the registration endpoint; it was not created "
            "by an operator, so anyone may hold its credentials. Check who did (the "
            "audit log, `s2s_service list`), then grant with --approve-self-registered, "
            "or delete it and add the service again."
        )


def _grant(principal: ServicePrincipal, scopes, approve: bool) -> list[str]:
    """Grant ``scopes``; the fields to save. A self-registered principal needs ``approve``."""
    if not scopes:
        return []
    fields = ["scopes", "updated_at"]
    if principal.awaiting_approval:
        if not approve:
            raise NotApproved(principal.name)
        principal.approved_at = timezone.now()
        fields.append("approved_at")
    principal.grant(*scopes)
    return fields


@transaction.atomic
def ensure_principal(
    name: str, scopes: list[str] | tuple[str, ...] = (), *, approve: bool = False
) -> tuple[ServicePrincipal, bool]:
    """Create the principal if missing (enabled, with these scopes); grant scopes otherwise
    (a self-registered one only with ``approve``)."""
    try:
        validate_service_name(name)
        validate_scopes(" ".join(scopes))
    except ValidationError as exc:
        raise PrincipalError(" ".join(exc.messages)) from None
    principal, created = ServicePrincipal.objects.select_for_update().get_or_create(
        name=name, defaults={"spiffe_id": spiffe_id(name)}
    )
    fields = _grant(principal, scopes, approve)
    if fields:
        principal.save(update_fields=fields)
    if created or scopes:
        record_change("principal_added" if created else "scopes_changed", [principal], grant=scopes)
    return principal, created


@transaction.atomic
def set_scopes(name: str, *, grant=(), revoke=(), approve: bool = False) -> ServicePrincipal:
    principal = get_principal(name)
    fields = _grant(principal, grant, approve) or ["scopes", "updated_at"]
    if revoke:
        principal.revoke(*revoke)
    principal.save(update_fields=fields)
    record_change("scopes_changed", [principal], grant=list(grant), revoke=list(revoke))
    return principal


def approve(name: str) -> ServicePrincipal:
    """Mark a self-registered principal approved (scopes may then be granted)."""
    principal = get_principal(name)
    if principal.awaiting_approval:
        principal.approved_at = timezone.now()
        principal.save(update_fields=["approved_at", "updated_at"])
        record_change("principal_approved", [principal])
    return principal


def set_enabled(name: str, enabled: bool) -> ServicePrincipal:
    principal = get_principal(name)
    principal.enabled = enabled
    principal.save(update_fields=["enabled", "updated_at"])
    record_change("principal_enabled" if enabled else "principal_disabled", [principal])
    return principal


# --- client secrets: a backend an optional app installs ------------------------------
#
# The core stores no client secrets itself. An app that does (``s2s_auth.issuer``)
# registers a backend from its ``AppConfig.ready()``; the core never imports that app,
# the way ``django.contrib.auth`` finds its backends rather than knowing them.


@runtime_checkable
class SecretBackend(Protocol):
    """Where client secrets of principals live (generated, shown once, stored hashed)."""

    def create(self, principal: ServicePrincipal) -> str:
        """A new secret for ``principal``; returns the secret itself, once."""

    def rotate(self, principal: ServicePrincipal, *, grace: dt.timedelta) -> str:
        """A new secret; the previous ones stay valid for ``grace`` at most."""

    def active_count(self, principal: ServicePrincipal) -> int:
        """How many secrets of ``principal`` are valid now."""


_secret_backend: SecretBackend | None = None

NO_BACKEND_MESSAGE = (
    "Client secrets need a secret backend: add 's2s_auth.issuer' (or an app that "
    "calls register_secret_backend()) to INSTALLED_APPS."
)


def register_secret_backend(backend: SecretBackend | None) -> SecretBackend | None:
    """Install ``backend`` (None removes it); returns the one it replaces."""
    global _secret_backend
    if backend is not None and not isinstance(backend, SecretBackend):
        raise TypeError(f"{backend!r} does not implement SecretBackend.")
    previous, _secret_backend = _secret_backend, backend
    return previous


def secret_backend() -> SecretBackend | None:
    """The installed backend, None when no app stores client secrets."""
    return _secret_backend


def _require_backend() -> SecretBackend:
    if _secret_backend is None:
        raise PrincipalError(NO_BACKEND_MESSAGE)
    return _secret_backend


def create_client_secret(name: str) -> str:
    """A new generated secret for ``name``, returned once."""
    backend = _require_backend()
    principal = get_principal(name)
    secret = backend.create(principal)
    record_change("secret_created", [principal])
    return secret


def rotate_client_secret(name: str, *, grace_hours: float | None = None) -> str:
    """A new secret for ``name``; the old ones stay valid ``grace_hours`` at most
    (None: ``S2S_AUTH["SECRET_ROTATION_GRACE"]`` seconds)."""
    backend = _require_backend()
    principal = get_principal(name)
    grace = rotation_grace(grace_hours)
    secret = backend.rotate(principal, grace=grace)
    record_change("secret_rotated", [principal], grace_seconds=grace.total_seconds())
    return secret


def rotation_grace(grace_hours: float | None = None) -> dt.timedelta:
    """How long rotated secrets stay valid: ``grace_hours``, else the setting."""
    if grace_hours is None:
        return dt.timedelta(seconds=float(s2s_settings().SECRET_ROTATION_GRACE))
    if grace_hours < 0:
        raise PrincipalError("--grace-hours must not be negative.")
    return dt.timedelta(hours=grace_hours)


def active_secret_count(principal: ServicePrincipal) -> int | None:
    """How many client secrets of ``principal`` are valid now (None: no backend)."""
    return None if _secret_backend is None else _secret_backend.active_count(principal)
