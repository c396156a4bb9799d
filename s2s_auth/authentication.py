"""DRF authentication classes: thin adapters from a request to the core verifiers.

Each class returns ``None`` when the request does not use its scheme,
``(ServiceIdentity, credential)`` on success, and raises ``CredentialMissing``
(401) or ``CredentialRejected`` (403) with a reason code otherwise. The classes live
in ``s2s_auth.mechanisms``, one module each.
"""

from s2s_auth.mechanisms.access_token import AccessTokenAuthentication, EndUserTokenAuthentication
from s2s_auth.mechanisms.api_key import APIKeyAuthentication
from s2s_auth.mechanisms.base import ServiceAuthentication, identity_for
from s2s_auth.mechanisms.http_signature import HTTPSignatureAuthentication
from s2s_auth.mechanisms.mtls import MTLSAuthentication
from s2s_auth.mechanisms.service_jwt import ServiceJWTAuthentication
from s2s_auth.tls.peer import verify_peer

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
