"""The DRF authentication classes, for ``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]``
and a view's ``authentication_classes``; each lives in ``s2s_auth.mechanisms``.

Each returns ``None`` when the request does not use its scheme,
``(ServiceIdentity, credential)`` on success, and otherwise raises the HTTP error that
:data:`s2s_auth.errors.HTTP_STATUS` gives its reason code (401 with
``WWW-Authenticate``, 403, or 503).
"""

from s2s_auth.mechanisms.access_token import AccessTokenAuthentication, EndUserTokenAuthentication
from s2s_auth.mechanisms.api_key import APIKeyAuthentication
from s2s_auth.mechanisms.base import ServiceAuthentication
from s2s_auth.mechanisms.http_signature import HTTPSignatureAuthentication
from s2s_auth.mechanisms.mtls import MTLSAuthentication
from s2s_auth.mechanisms.service_jwt import ServiceJWTAuthentication

__all__ = [
    "APIKeyAuthentication",
    "AccessTokenAuthentication",
    "EndUserTokenAuthentication",
    "HTTPSignatureAuthentication",
    "MTLSAuthentication",
    "ServiceAuthentication",
    "ServiceJWTAuthentication",
]
