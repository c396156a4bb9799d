"""Service-principal administration, shared by the management command and the admin."""

from __future__ import annotations

from django.db import transaction

from s2s_auth.conf import spiffe_id
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
    from django.core.exceptions import ValidationError

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
    return principal, created


def set_scopes(name: str, *, grant=(), revoke=()) -> ServicePrincipal:
    principal = get_principal(name)
    if grant:
        principal.grant(*grant)
    if revoke:
        principal.revoke(*revoke)
    principal.save(update_fields=["scopes", "updated_at"])
    return principal


def set_enabled(name: str, enabled: bool) -> ServicePrincipal:
    principal = get_principal(name)
    principal.enabled = enabled
    principal.save(update_fields=["enabled", "updated_at"])
    return principal


# --- client secrets (s2s_auth.issuer, when installed) ------------------------------


def issuer_installed() -> bool:
    from django.apps import apps

    return apps.is_installed("s2s_auth.issuer")


def _require_issuer() -> None:
    if not issuer_installed():
        raise PrincipalError("Client secrets need 's2s_auth.issuer' in INSTALLED_APPS.")


def create_client_secret(name: str) -> str:
    """A new generated 256-bit secret for ``name``; returned once, stored as an HMAC."""
    _require_issuer()
    from s2s_auth.issuer.clients import create_secret

    _, secret = create_secret(get_principal(name))
    return secret


def rotate_client_secret(name: str, *, grace_hours: float = 24) -> str:
    """A new secret for ``name``; the old ones stay valid ``grace_hours`` at most."""
    import datetime as dt

    _require_issuer()
    from s2s_auth.issuer.clients import rotate_secret

    if grace_hours < 0:
        raise PrincipalError("--grace-hours must not be negative.")
    _, secret = rotate_secret(get_principal(name), grace=dt.timedelta(hours=grace_hours))
    return secret


def active_secret_count(principal: ServicePrincipal) -> int | None:
    """How many client secrets of ``principal`` are valid now (None: no issuer)."""
    if not issuer_installed():
        return None
    from s2s_auth.issuer.models import ClientSecret

    return ClientSecret.objects.active().filter(principal=principal).count()
