"""Service-principal administration, shared by the management command and the admin.

Client secrets go through a :class:`SecretBackend` that an optional app registers
(``s2s_auth.issuer`` does): the core never imports that app.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol, runtime_checkable

from django.core.exceptions import ValidationError
from django.db import transaction

from s2s_auth.audit.changes import record_change
from s2s_auth.identity import spiffe_id
from s2s_auth.models import ServicePrincipal, validate_scopes, validate_service_name


class PrincipalError(ValueError):
    pass


def get_principal(name: str) -> ServicePrincipal:
    try:
        return ServicePrincipal.objects.get(name=name)
    except ServicePrincipal.DoesNotExist:
        raise PrincipalError(f"No service principal named {name!r}.") from None


@transaction.atomic
def ensure_principal(
    name: str, scopes: list[str] | tuple[str, ...] = ()
) -> tuple[ServicePrincipal, bool]:
    """Create the principal if missing (enabled, with these scopes); grant scopes otherwise."""
    try:
        validate_service_name(name)
        validate_scopes(" ".join(scopes))
    except ValidationError as exc:
        raise PrincipalError(" ".join(exc.messages)) from None
    principal, created = ServicePrincipal.objects.select_for_update().get_or_create(
        name=name, defaults={"spiffe_id": spiffe_id(name)}
    )
    if scopes:
        principal.grant(*scopes)
        principal.save(update_fields=["scopes", "updated_at"])
    if created or scopes:
        record_change("principal_added" if created else "scopes_changed", [principal], grant=scopes)
    return principal, created


def set_scopes(name: str, *, grant=(), revoke=()) -> ServicePrincipal:
    principal = get_principal(name)
    if grant:
        principal.grant(*grant)
    if revoke:
        principal.revoke(*revoke)
    principal.save(update_fields=["scopes", "updated_at"])
    record_change("scopes_changed", [principal], grant=list(grant), revoke=list(revoke))
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
    principal = get_principal(name)
    secret = _require_backend().create(principal)
    record_change("secret_created", [principal])
    return secret


def rotate_client_secret(name: str, *, grace_hours: float = 24) -> str:
    """A new secret for ``name``; the old ones stay valid ``grace_hours`` at most."""
    backend = _require_backend()
    if grace_hours < 0:
        raise PrincipalError("--grace-hours must not be negative.")
    principal = get_principal(name)
    secret = backend.rotate(principal, grace=dt.timedelta(hours=grace_hours))
    record_change("secret_rotated", [principal], grace_hours=grace_hours)
    return secret


def active_secret_count(principal: ServicePrincipal) -> int | None:
    """How many client secrets of ``principal`` are valid now (None: no backend)."""
    return None if _secret_backend is None else _secret_backend.active_count(principal)
