"""s2s_auth's models, one module per concern."""

from .principals import (
    ServiceCertificate,
    ServicePrincipal,
    validate_scopes,
    validate_service_name,
)

__all__ = [
    "ServiceCertificate",
    "ServicePrincipal",
    "validate_scopes",
    "validate_service_name",
]
