"""DRF authentication classes: thin adapters from a request to the core verifiers.

Each class returns ``None`` when the request does not use its scheme,
``(ServiceIdentity, credential)`` on success, and raises ``CredentialMissing``
(401) or ``CredentialRejected`` (403) with a reason code otherwise. The classes live
in ``s2s_auth.mechanisms``, one module each.
"""

from .mechanisms.access_token import AccessTokenAuthentication, EndUserTokenAuthentication
from .mechanisms.api_key import APIKeyAuthentication
from .mechanisms.base import ServiceAuthentication, identity_for
from .mechanisms.http_signature import HTTPSignatureAuthentication
from .mechanisms.mtls import MTLSAuthentication, verify_peer
from .mechanisms.service_jwt import ServiceJWTAuthentication

__all__ = [
    "APIKeyAuthentication",
    "AccessTokenAuthentication",
    "EndUserTokenAuthentication",
    "HTTPSignatureAuthentication",
    "MTLSAuthentication",
    "ServiceAuthentication",
    "ServiceJWTAuthentication",
    "identity_for",
    "verify_peer",
]
