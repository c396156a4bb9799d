"""What every DRF authentication class of s2s_auth shares."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from s2s_auth.audit import events
from s2s_auth.identity import ServiceIdentity
from s2s_auth.models import ServicePrincipal


class CredentialMissing(exceptions.AuthenticationFailed):
    """401: no usable credential was presented (DRF adds ``WWW-Authenticate``)."""

    def __init__(self, code: str, detail: str):
        super().__init__({"error": code, "detail": detail}, code=code)
        self.reason = code


class CredentialRejected(exceptions.PermissionDenied):
    """403: a credential was presented and is invalid or not allowed."""

    def __init__(self, code: str, detail: str):
        super().__init__({"error": code, "detail": detail}, code=code)
        self.reason = code


def identity_for(spiffe_id: str, mechanism: str, *, end_user=None) -> ServiceIdentity:
    """The enabled principal with this SPIFFE ID, or a 403 with the reason."""
    try:
        principal = ServicePrincipal.objects.only(
            "id", "name", "spiffe_id", "enabled", "scopes"
        ).get(spiffe_id=spiffe_id)
    except ObjectDoesNotExist:
        raise CredentialRejected(
            "unknown_principal", f"{spiffe_id} is not a registered service principal."
        ) from None
    return identity_from_principal(principal, mechanism, end_user=end_user)


def identity_from_principal(
    principal: ServicePrincipal, mechanism: str, *, end_user=None
) -> ServiceIdentity:
    if not principal.enabled:
        raise CredentialRejected("principal_disabled", f"{principal.name} is disabled.")
    return ServiceIdentity(
        name=principal.name,
        spiffe_id=principal.spiffe_id,
        scopes=principal.scope_set,
        mechanism=mechanism,
        principal_id=principal.pk,
        end_user=end_user,
    )


class ServiceAuthentication(BaseAuthentication):
    """Base class: ``mechanism`` names the scheme in audit records and ``request.user``.

    Subclasses call ``self.refuse(request, exc, ...)`` for every refusal so that it
    is logged and audited exactly once, and ``self.accept(...)`` on success.
    """

    mechanism = "unknown"

    def refuse(self, request, exc: CredentialMissing | CredentialRejected, **evidence):
        events.record(
            request,
            events.Decision(
                mechanism=self.mechanism,
                outcome="refused",
                reason=exc.reason,
                detail=str(exc.detail.get("detail", "")),
                **evidence,
            ),
        )
        raise exc

    def accept(self, request, identity: ServiceIdentity, **evidence) -> None:
        events.record(
            request,
            events.Decision(
                mechanism=self.mechanism,
                outcome="accepted",
                principal=identity.spiffe_id,
                end_user=identity.end_user.id if identity.end_user else "",
                **evidence,
            ),
        )
