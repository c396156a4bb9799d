"""Service-principal administration, shared by the management command and the admin."""

from __future__ import annotations

from django.db import transaction

from .conf import spiffe_id
from .models import ServicePrincipal, validate_scopes, validate_service_name


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
