"""HTTP endpoints of the identity service (DRF views answering in RFC 6749 terms).

* ``POST /oauth/token`` — client credentials grant (form-encoded only).
* ``POST /api/v1/account/service-token`` — the same, as JSON ``serviceName``/``password``.
* ``POST /api/v1/account/register/service`` — self-registration, no scopes.
* ``POST /api/v1/auth/login`` — end-user login, a short-lived user token.
* ``GET /.well-known/jwks.json`` and ``/.well-known/oauth-authorization-server``.

Bodies are parsed by :mod:`~s2s_auth.issuer.parsers`, validated by
:mod:`~s2s_auth.issuer.serializers` and rate limited by
:mod:`~s2s_auth.issuer.throttling`; every refusal is an RFC 6749 §5.2 body
(:mod:`~s2s_auth.issuer.endpoint`).
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any
from urllib.parse import unquote_plus

from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.http import JsonResponse

from s2s_auth.audit.issuance import record_registered
from s2s_auth.conf import s2s_settings
from s2s_auth.core.x509 import CertificateRejected
from s2s_auth.issuer import exchange, oauth
from s2s_auth.issuer.clients import AlreadyRegistered, register_service
from s2s_auth.issuer.endpoint import IssuerAPIView, client_ip, token_response
from s2s_auth.issuer.keys import key_store
from s2s_auth.issuer.oauth import OAuthError
from s2s_auth.issuer.parsers import BoundedFormParser
from s2s_auth.issuer.serializers import (
    TOKEN_PARAMS,
    LoginSerializer,
    RegisterServiceSerializer,
    service_token_body,
    token_form,
)
from s2s_auth.issuer.throttling import RegistrationRateThrottle, login_gate, retry_after
from s2s_auth.mechanisms.base import authorization_header
from s2s_auth.models import ServicePrincipal
from s2s_auth.tls.peer import verify_peer
from s2s_auth.tls.proxy_headers import ProxyHeaderError

logger = logging.getLogger("s2s_auth.issuer")


def _audiences(principal, resource: list[str], audience: str | None) -> list[str] | None:
    values = list(resource)
    if audience is not None:
        values += audience.split()
    return oauth.resolve_audiences(values, principal) if values else None


# ------------------------------------------------------------------ token endpoint


def parse_basic(header: str) -> tuple[str, str]:
    """RFC 6749 §2.3.1: base64(urlencode(client_id) ":" urlencode(secret))."""
    try:
        decoded = base64.b64decode(header.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise oauth.invalid_client("Malformed Basic credentials.") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise oauth.invalid_client("Malformed Basic credentials.")
    return unquote_plus(client_id), unquote_plus(secret)


_URL_PARAMS = (*TOKEN_PARAMS, "resource")


def _token_params_in_url(request) -> bool:
    """Whether the URL's query names a token parameter (never parsed without a query)."""
    if not request._request.META.get("QUERY_STRING"):
        return False
    query = request.query_params
    return any(name in query for name in _URL_PARAMS)


class TokenView(IssuerAPIView):
    """RFC 6749 §4.4 client credentials grant with RFC 7523 / RFC 8705 client auth."""

    http_method_names = ["post"]
    parser_classes = (BoundedFormParser,)
    mechanism = "oauth"

    def post(self, request):
        if _token_params_in_url(request):
            raise OAuthError("invalid_request", "Parameters belong in the body, not the URL.")
        params = token_form(request.data)
        self.mechanism, principal, conn_peer = self.authenticate_client(request, params)
        if params["grant_type"] not in oauth.GRANT_TYPES:
            raise OAuthError(
                "unsupported_grant_type",
                f"Grant type {params['grant_type'][:50]!r} is not supported.",
            )
        oauth.ensure_enabled(principal)
        if params["grant_type"] == exchange.GRANT_TYPE:
            oauth.bind_peer(principal, conn_peer)  # another service's certificate: refused
            return token_response(
                exchange.exchange(request, principal, params, method=self.mechanism)
            )
        peer = oauth.bind_peer(principal, conn_peer)
        body = oauth.mint_service_token(
            request,
            principal,
            scopes=oauth.select_scopes(principal, params.get("scope")),
            audiences=_audiences(principal, params["resource"], params.get("audience")),
            peer=peer,
            method=self.mechanism,
        )
        return token_response(body)

    def authenticate_client(self, request, params):
        authorization = authorization_header(request)
        basic = None
        if authorization is not None:
            scheme, value = authorization
            if scheme != "basic":
                raise OAuthError("invalid_request", "Only Basic client authentication.")
            basic = parse_basic(value)
        used = [
            name
            for name, present in (
                ("client_secret_basic", basic is not None),
                ("client_secret_post", "client_secret" in params),
                (
                    "private_key_jwt",
                    "client_assertion" in params or "client_assertion_type" in params,
                ),
            )
            if present
        ]
        if len(used) > 1:
            raise OAuthError(
                "invalid_request",
                f"More than one client authentication method: {', '.join(used)}.",
            )
        client_id = params.get("client_id")
        if basic is not None and client_id is not None and client_id != basic[0]:
            raise OAuthError("invalid_request", "client_id differs from the Basic credentials.")
        method = used[0] if used else "tls_client_auth"
        if method == "client_secret_post" and not client_id:
            raise OAuthError("invalid_request", "Missing client_id.")
        if method == "private_key_jwt":
            if params.get("client_assertion_type") != oauth.ASSERTION_TYPE:
                raise OAuthError(
                    "invalid_request", f"client_assertion_type must be {oauth.ASSERTION_TYPE}."
                )
            if not params.get("client_assertion"):
                raise OAuthError("invalid_request", "Missing client_assertion.")
        claimed = None
        if method == "private_key_jwt" and not client_id:
            claimed = oauth.assertion_subject(params["client_assertion"])
        gate = oauth.FailureGate(
            basic[0] if basic else client_id or "", client_ip(request), claimed=claimed
        )
        conn_peer = gate.run(lambda: oauth.connection_peer(request))
        # A verified certificate proved its key in the handshake: never held back.
        gate.exempt = conn_peer is not None
        if method == "client_secret_basic":
            principal = gate.run(lambda: oauth.authenticate_secret(*basic, basic=True))
        elif method == "client_secret_post":
            secret = params["client_secret"]
            principal = gate.run(lambda: oauth.authenticate_secret(client_id, secret, basic=False))
        elif method == "private_key_jwt":
            assertion = params["client_assertion"]
            principal = gate.run(
                lambda: oauth.authenticate_assertion(request, assertion, client_id, conn_peer)
            )
        else:
            principal = gate.run(lambda: oauth.authenticate_tls(client_id, conn_peer))
        oauth.check_rate(principal.name, gate)
        return method, principal, conn_peer


class ServiceTokenView(IssuerAPIView):
    """``{"serviceName", "password"}`` as JSON → the token endpoint's response.

    Optional ``scope`` (space-separated), ``resource`` (list) / ``audience``.
    """

    http_method_names = ["post"]
    mechanism = "service_token_json"

    def post(self, request):
        data = service_token_body(request.data)
        gate = oauth.FailureGate(data["serviceName"], client_ip(request))
        conn_peer = gate.run(lambda: oauth.connection_peer(request))
        gate.exempt = conn_peer is not None
        principal = gate.run(
            lambda: oauth.authenticate_secret(data["serviceName"], data["password"], basic=False)
        )
        oauth.check_rate(principal.name, gate)
        oauth.ensure_enabled(principal)
        peer = oauth.bind_peer(principal, conn_peer)
        body = oauth.mint_service_token(
            request,
            principal,
            scopes=oauth.select_scopes(principal, data.get("scope")),
            audiences=_audiences(principal, data["resource"], data.get("audience")),
            peer=peer,
            method=self.mechanism,
        )
        return token_response(body)


# ------------------------------------------------------------- accounts and users


class RegisterServiceView(IssuerAPIView):
    """Self-registration of a service account, which starts with *no* scopes.

    With a password (at least MIN_PASSWORD_LENGTH characters) and/or a TLS client
    certificate of our CA whose SPIFFE ID names ``serviceName``. An existing name is
    409; registrations are rate limited per client IP.
    """

    http_method_names = ["post"]
    throttle_classes = (RegistrationRateThrottle,)
    mechanism = "register"

    def post(self, request):
        if not s2s_settings().REGISTRATION_OPEN:
            raise OAuthError("access_denied", "Registration is closed.", status=403)
        request.data  # noqa: B018 - a malformed body is refused before the certificate
        try:
            peer = verify_peer(request)
        except (CertificateRejected, ProxyHeaderError) as exc:
            raise OAuthError(
                "invalid_request", f"TLS client certificate refused: {exc}", status=403
            ) from exc
        data = self.validated(RegisterServiceSerializer, peer=peer)
        name = data.get("serviceName")
        if name is None:
            name = peer.service_name
        password = data.get("password")
        try:
            principal = register_service(name, password=password, peer=peer)
        except ValidationError as exc:
            raise OAuthError("invalid_request", " ".join(exc.messages)) from None
        except AlreadyRegistered:
            raise OAuthError(
                "already_registered", f"Service {name!r} is already registered.", status=409
            ) from None
        logger.info(
            "registered service %s from %s (certificate: %s)",
            principal.name,
            client_ip(request) or "-",
            peer.fingerprint[:16] if peer else "-",
        )
        record_registered(request, principal, password=password is not None, peer=peer)
        response = JsonResponse(
            {
                "serviceName": principal.name,
                "clientId": principal.name,
                "spiffeId": principal.spiffe_id,
                "scopes": [],
                "credentials": [
                    c for c, present in (("password", password), ("certificate", peer)) if present
                ],
            },
            status=201,
        )
        response["Cache-Control"] = "no-store"
        return response


class LoginView(IssuerAPIView):
    """End-user login: ``{"username", "password"}`` → a user access token."""

    http_method_names = ["post"]
    mechanism = "login"

    def post(self, request):
        data = self.validated(LoginSerializer)
        refused = login_gate(request, data["username"])  # before the password hasher
        if refused is not None:
            raise oauth.rate_limited(retry_after(refused))
        user = authenticate(request, username=data["username"], password=data["password"])
        if user is None or not user.is_active:
            raise OAuthError(
                "invalid_grant",
                "Invalid username or password.",
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="login"'},
            )
        return token_response(oauth.mint_user_token(request, user))


# ---------------------------------------------------------------------- discovery


def _cacheable(data: dict[str, Any]) -> JsonResponse:
    response = JsonResponse(data)
    response["Cache-Control"] = f"public, max-age={int(s2s_settings().JWKS_MAX_AGE)}"
    return response


class JWKSView(IssuerAPIView):
    http_method_names = ["get", "head"]
    mechanism = "jwks"

    def get(self, request):
        return _cacheable(key_store().jwks())


class MetadataView(IssuerAPIView):
    """RFC 8414 authorization server metadata."""

    http_method_names = ["get", "head"]
    mechanism = "metadata"

    def get(self, request):
        conf = s2s_settings()
        scopes = set()
        for value in ServicePrincipal.objects.exclude(scopes="").values_list("scopes", flat=True):
            scopes.update(value.split())
        user_scope = str(s2s_settings().USER_TOKEN_SCOPE or "")
        scopes.update(user_scope.split())
        return _cacheable(
            {
                "issuer": oauth.issuer_url(request),
                "token_endpoint": oauth.token_endpoint_url(request),
                "jwks_uri": oauth.endpoint_url(request, "jwks"),
                "grant_types_supported": list(oauth.GRANT_TYPES),
                # RFC 8414 requires the member; there is no authorization endpoint,
                # so the only honest value is "none" (nothing is issued there).
                "response_types_supported": ["none"],
                "token_endpoint_auth_methods_supported": list(oauth.AUTH_METHODS),
                "token_endpoint_auth_signing_alg_values_supported": list(conf.JWT_ALGORITHMS),
                "tls_client_certificate_bound_access_tokens": True,
                "scopes_supported": sorted(scopes),
            }
        )
