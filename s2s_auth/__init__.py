"""s2s_auth: service-to-service authentication for Django REST framework services.

Mechanisms: mutual TLS, self-signed service JWTs, OAuth2 client-credentials access
tokens, RFC 9421 HTTP message signatures and API keys, with a hash-chained audit log.
Settings live in the ``S2S_AUTH`` dict (see ``s2s_auth.conf.DEFAULTS``).

The public API is ``__all__``: ``from s2s_auth import ServiceAPIView, HasScope``.
Names are imported on first use (PEP 562), so ``import s2s_auth`` is cheap and safe
in a settings file, before Django's apps are ready.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    # Protecting a view.
    "ServiceAPIView": "s2s_auth.views",
    "WhoAmIView": "s2s_auth.views",
    "MetricsView": "s2s_auth.metrics.views",
    "IsService": "s2s_auth.permissions",
    "HasScope": "s2s_auth.permissions",
    "HasRequiredScopes": "s2s_auth.permissions",
    # What request.user and request.auth are.
    "ServiceIdentity": "s2s_auth.identity",
    "EndUser": "s2s_auth.identity",
    "TokenUser": "s2s_auth.mechanisms.access_token",
    "AccessToken": "s2s_auth.core.access_tokens",
    # Errors.
    "S2SError": "s2s_auth.errors",
    "exception_handler": "s2s_auth.errors",
    # The DRF authentication classes.
    "ServiceAuthentication": "s2s_auth.mechanisms.base",
    "MTLSAuthentication": "s2s_auth.mechanisms.mtls",
    "ServiceJWTAuthentication": "s2s_auth.mechanisms.service_jwt",
    "HTTPSignatureAuthentication": "s2s_auth.mechanisms.http_signature",
    "AccessTokenAuthentication": "s2s_auth.mechanisms.access_token",
    "EndUserTokenAuthentication": "s2s_auth.mechanisms.access_token",
    "APIKeyAuthentication": "s2s_auth.mechanisms.api_key",
    # Calling another service.
    "ServiceClient": "s2s_auth.client.session",
    "mtls_client": "s2s_auth.client.session",
    "per_thread_client": "s2s_auth.client.session",
    "ServiceCredentials": "s2s_auth.client.auth",
    "ServiceJWTAuth": "s2s_auth.client.auth",
    "HTTPSignatureAuth": "s2s_auth.client.auth",
    "ChainAuth": "s2s_auth.client.auth",
    "signature_auth": "s2s_auth.client.auth",
    "end_user_context": "s2s_auth.client.auth",
    "TokenManager": "s2s_auth.client.token_manager",
    "BearerTokenAuth": "s2s_auth.client.token_manager",
    "TokenEndpointError": "s2s_auth.client.token_manager",
    # Keeping this service's certificate renewed.
    "RenewalAgent": "s2s_auth.agent.agent",
    "start_agent": "s2s_auth.agent.agent",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 's2s_auth' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
