"""HTTP endpoints of the identity service (plain Django views: RFC 6749 bodies).

* ``POST /oauth/token`` — client credentials grant (form-encoded only).
* ``POST /api/v1/account/service-token`` — the same, as JSON ``serviceName``/``password``.
* ``POST /api/v1/account/register/service`` — self-registration, no scopes.
* ``POST /api/v1/auth/login`` — end-user login, a short-lived user token.
* ``GET /.well-known/jwks.json`` and ``/.well-known/oauth-authorization-server``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any
from urllib.parse import unquote_plus

from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from s2s_auth.conf import s2s_settings
from s2s_auth.core.certs import CertificateRejected
from s2s_auth.issuer import oauth, ratelimit
from s2s_auth.issuer.clients import AlreadyRegistered, register_service
from s2s_auth.issuer.keys import key_store
from s2s_auth.issuer.oauth import OAuthError
from s2s_auth.models import ServicePrincipal
from s2s_auth.tls.peer import verify_peer
from s2s_auth.tls.proxy_headers import ProxyHeaderError

logger = logging.getLogger("s2s_auth.issuer")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_JSON_BODY = 16384
#: Parameters that must never be repeated or sent in the URL.
TOKEN_PARAMS = (
    "grant_type",
    "scope",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "audience",
)


def error_response(exc: OAuthError) -> JsonResponse:
    response = JsonResponse(
        {"error": exc.error, "error_description": exc.description}, status=exc.status
    )
    for name, value in {**NO_STORE, **exc.headers}.items():
        response[name] = value
    return response


def token_response(body: dict[str, Any]) -> JsonResponse:
    response = JsonResponse(body)
    for name, value in NO_STORE.items():
        response[name] = value
    return response


def _refused(request, exc: OAuthError, mechanism: str) -> JsonResponse:
    """Log a refusal (never a credential) and answer it."""
    logger.warning(
        "issuer refused %s %s from %s: %s (%s) client=%s",
        mechanism,
        request.path,
        client_ip(request) or "-",
        exc.error,
        exc.description,
        exc.principal or "-",
    )
    return error_response(exc)


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


def read_json(request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise OAuthError("invalid_request", "The body must be application/json.")
    if len(request.body) > MAX_JSON_BODY:
        raise OAuthError("invalid_request", "The body is too large.")
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise OAuthError("invalid_request", "The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise OAuthError("invalid_request", "The body must be a JSON object.")
    return data


def _string(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise OAuthError("invalid_request", f"Missing {name}.")
        return None
    if not isinstance(value, str):
        raise OAuthError("invalid_request", f"{name} must be a string.")
    return value


def _audiences(resource: list[str], audience: str | None) -> list[str] | None:
    values = list(resource)
    if audience is not None:
        values += audience.split()
    return oauth.resolve_audiences(values) if values else None


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


@method_decorator(csrf_exempt, name="dispatch")
class TokenView(View):
    """RFC 6749 §4.4 client credentials grant with RFC 7523 / RFC 8705 client auth."""

    http_method_names = ["post", "options"]

    def http_method_not_allowed(self, request, *args, **kwargs):
        response = error_response(
            OAuthError("invalid_request", "The token endpoint takes POST.", status=405)
        )
        response["Allow"] = "POST"
        return response

    def post(self, request):
        method = "oauth"
        try:
            params = self.parameters(request)
            method, principal, conn_peer = self.authenticate_client(request, params)
            if params["grant_type"] not in oauth.GRANT_TYPES:
                raise OAuthError(
                    "unsupported_grant_type",
                    f"Grant type {params['grant_type'][:50]!r} is not supported.",
                )
            oauth.ensure_enabled(principal)
            peer = oauth.bind_peer(principal, conn_peer)
            scopes = oauth.select_scopes(principal, params.get("scope"))
            audiences = _audiences(params["resource"], params.get("audience"))
            body = oauth.mint_service_token(
                request,
                principal,
                scopes=scopes,
                audiences=audiences,
                peer=peer,
                method=method,
            )
        except OAuthError as exc:
            return _refused(request, exc, method)
        return token_response(body)

    def parameters(self, request) -> dict[str, Any]:
        if request.content_type != "application/x-www-form-urlencoded":
            raise OAuthError(
                "invalid_request", "The body must be application/x-www-form-urlencoded."
            )
        if any(name in request.GET for name in (*TOKEN_PARAMS, "resource")):
            raise OAuthError("invalid_request", "Parameters belong in the body, not the URL.")
        form = request.POST
        params: dict[str, Any] = {"resource": form.getlist("resource")}
        for name, values in form.lists():
            if name == "resource":
                continue
            if len(values) > 1:
                raise OAuthError("invalid_request", f"Parameter {name} is repeated.")
            params[name] = values[0]
        if not params.get("grant_type"):
            raise OAuthError("invalid_request", "Missing grant_type.")
        return params

    def authenticate_client(self, request, params):
        header = request.META.get("HTTP_AUTHORIZATION")
        basic = None
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "basic":
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
        conn_peer = oauth.connection_peer(request)
        method = used[0] if used else "tls_client_auth"
        if method == "client_secret_basic":
            principal = oauth.authenticate_secret(basic[0], basic[1], basic=True)
        elif method == "client_secret_post":
            if not client_id:
                raise OAuthError("invalid_request", "Missing client_id.")
            principal = oauth.authenticate_secret(client_id, params["client_secret"], basic=False)
        elif method == "private_key_jwt":
            if params.get("client_assertion_type") != oauth.ASSERTION_TYPE:
                raise OAuthError(
                    "invalid_request", f"client_assertion_type must be {oauth.ASSERTION_TYPE}."
                )
            if not params.get("client_assertion"):
                raise OAuthError("invalid_request", "Missing client_assertion.")
            principal = oauth.authenticate_assertion(
                request, params["client_assertion"], client_id, conn_peer
            )
        else:
            principal = oauth.authenticate_tls(client_id, conn_peer)
        return method, principal, conn_peer


@method_decorator(csrf_exempt, name="dispatch")
class ServiceTokenView(View):
    """``{"serviceName", "password"}`` as JSON → the token endpoint's response.

    Optional ``scope`` (space-separated), ``resource`` (list) / ``audience``.
    """

    http_method_names = ["post"]

    def post(self, request):
        try:
            data = read_json(request)
            name = _string(data, "serviceName")
            password = _string(data, "password")
            scope = _string(data, "scope", required=False)
            audience = _string(data, "audience", required=False)
            resource = data.get("resource", [])
            if isinstance(resource, str):
                resource = [resource]
            if not isinstance(resource, list) or not all(isinstance(r, str) for r in resource):
                raise OAuthError("invalid_request", "resource must be a list of strings.")
            principal = oauth.authenticate_secret(name, password, basic=False)
            oauth.ensure_enabled(principal)
            peer = oauth.bind_peer(principal, oauth.connection_peer(request))
            body = oauth.mint_service_token(
                request,
                principal,
                scopes=oauth.select_scopes(principal, scope),
                audiences=_audiences(resource, audience),
                peer=peer,
                method="service_token_json",
            )
        except OAuthError as exc:
            return _refused(request, exc, "service_token_json")
        return token_response(body)


# ------------------------------------------------------------- accounts and users


@method_decorator(csrf_exempt, name="dispatch")
class RegisterServiceView(View):
    """Self-registration of a service account, which starts with *no* scopes.

    With a password (at least MIN_PASSWORD_LENGTH characters) and/or a TLS client
    certificate of our CA whose SPIFFE ID names ``serviceName``. An existing name is
    409; registrations are rate limited per client IP.
    """

    http_method_names = ["post"]

    def post(self, request):
        try:
            if not s2s_settings().REGISTRATION_OPEN:
                raise OAuthError("access_denied", "Registration is closed.", status=403)
            retry = ratelimit.hit(
                "register",
                client_ip(request),
                int(s2s_settings().REGISTRATION_RATE_LIMIT_PER_HOUR),
                3600,
            )
            if retry is not None:
                raise oauth.rate_limited(retry)
            data = read_json(request)
            try:
                peer = verify_peer(request)
            except (CertificateRejected, ProxyHeaderError) as exc:
                raise OAuthError(
                    "invalid_request", f"TLS client certificate refused: {exc}", status=403
                ) from exc
            name = _string(data, "serviceName", required=peer is None)
            if name is None:
                name = peer.service_name
            password = _string(data, "password", required=peer is None)
            try:
                principal = register_service(name, password=password, peer=peer)
            except ValidationError as exc:
                raise OAuthError("invalid_request", " ".join(exc.messages)) from None
            except AlreadyRegistered:
                raise OAuthError(
                    "already_registered", f"Service {name!r} is already registered.", status=409
                ) from None
        except OAuthError as exc:
            return _refused(request, exc, "register")
        logger.info(
            "registered service %s from %s (certificate: %s)",
            principal.name,
            client_ip(request) or "-",
            peer.fingerprint[:16] if peer else "-",
        )
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


@method_decorator(csrf_exempt, name="dispatch")
class LoginView(View):
    """End-user login: ``{"username", "password"}`` → a user access token."""

    http_method_names = ["post"]

    def post(self, request):
        try:
            data = read_json(request)
            username = _string(data, "username")
            password = _string(data, "password")
            retry = ratelimit.hit(
                "login",
                f"{username.casefold()}|{client_ip(request)}",
                int(s2s_settings().LOGIN_RATE_LIMIT_PER_MINUTE),
                60,
            )
            if retry is not None:
                raise oauth.rate_limited(retry)
            user = authenticate(request, username=username, password=password)
            if user is None or not user.is_active:
                raise OAuthError("invalid_grant", "Invalid username or password.", status=401)
            body = oauth.mint_user_token(request, user)
        except OAuthError as exc:
            if exc.status == 401:
                exc.headers.setdefault("WWW-Authenticate", 'Bearer realm="login"')
            return _refused(request, exc, "login")
        return token_response(body)


# ---------------------------------------------------------------------- discovery


def _cacheable(data: dict[str, Any]) -> JsonResponse:
    response = JsonResponse(data)
    response["Cache-Control"] = f"public, max-age={int(s2s_settings().JWKS_MAX_AGE)}"
    return response


class JWKSView(View):
    http_method_names = ["get", "head"]

    def get(self, request):
        return _cacheable(key_store().jwks())


class MetadataView(View):
    """RFC 8414 authorization server metadata."""

    http_method_names = ["get", "head"]

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
                "response_types_supported": [],
                "token_endpoint_auth_methods_supported": list(oauth.AUTH_METHODS),
                "token_endpoint_auth_signing_alg_values_supported": list(conf.JWT_ALGORITHMS),
                "tls_client_certificate_bound_access_tokens": True,
                "scopes_supported": sorted(scopes),
            }
        )
