"""s2s_auth's models, one module per concern."""

from .apikeys import APIKey
from .audit import AuditCheckpoint, AuditRecord
from .principals import (
    ServiceCertificate,
    ServicePrincipal,
    validate_scopes,
    validate_service_name,
)

__all__ = [
    "APIKey",
    "AuditCheckpoint",
    "AuditRecord",
    "ServiceCertificate",
    "ServicePrincipal",
    "validate_scopes",
    "validate_service_name",
]
