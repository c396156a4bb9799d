"""s2s_auth's models, one module per concern."""

from s2s_auth.models.apikeys import APIKey
from s2s_auth.models.audit import AuditAcknowledgement, AuditCheckpoint, AuditRecord
from s2s_auth.models.principals import (
    ClientKey,
    ServiceCertificate,
    ServicePrincipal,
    validate_scopes,
    validate_service_name,
)

__all__ = [
    "APIKey",
    "AuditAcknowledgement",
    "AuditCheckpoint",
    "AuditRecord",
    "ClientKey",
    "ServiceCertificate",
    "ServicePrincipal",
    "validate_scopes",
    "validate_service_name",
]
