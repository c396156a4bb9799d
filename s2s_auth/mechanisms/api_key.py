"""API keys (``Authorization: ApiKey <key>``): the simple baseline mechanism.

401 (with ``WWW-Authenticate: ApiKey realm=...``) when the key cannot be identified:
``malformed_api_key``, ``unknown_api_key`` (no such key id, or a wrong secret: the two
are not told apart). 403 when a known key is not allowed: ``api_key_expired``,
``api_key_revoked``, ``principal_disabled``. ``request.auth`` is the ``APIKey`` row.
"""

from __future__ import annotations

from s2s_auth.conf import s2s_settings
from s2s_auth.credentials.apikeys import APIKeyError, check_key
from s2s_auth.errors import S2SError
from s2s_auth.mechanisms.base import ServiceAuthentication, identity_from_principal

__all__ = ["APIKeyAuthentication"]


class APIKeyAuthentication(ServiceAuthentication):
    keyword = "ApiKey"
    mechanism = "api_key"

    def get_raw_key(self, request) -> str | None:
        """The key of ``Authorization: ApiKey <key>``; None for any other scheme."""
        raw = self.get_authorization(request)
        if raw is not None and (not raw or len(raw.split()) != 1):
            self.reject(
                request,
                S2SError("malformed_api_key", "Authorization: ApiKey needs exactly one key."),
            )
        return raw

    def authenticate(self, request):
        raw = self.get_raw_key(request)
        if raw is None:
            return None
        try:
            key = check_key(raw)
        except APIKeyError as exc:
            evidence = {"claims": {"api_key_id": exc.key_id}} if exc.key_id else {}
            self.reject(request, exc, **evidence)
        evidence = {"principal": key.principal.spiffe_id, "claims": {"api_key_id": key.key_id}}
        try:
            identity = identity_from_principal(key.principal, self.mechanism)
        except S2SError as exc:
            self.reject(request, exc, **evidence)
        self.accept(request, identity, claims=evidence["claims"])
        return identity, key

    def authenticate_header(self, request) -> str:
        realm = s2s_settings().own_spiffe_id or "s2s"
        return f'{self.keyword} realm="{realm}"'
