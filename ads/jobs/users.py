"""UserService as the batch jobs call it: as the worker itself, with no end user.

A job has no request and no user behind it, so it has no user token to forward.
It authenticates as its own service, ``spiffe://<trust domain>/service/worker``:

* over mutual TLS with the worker's certificate (``<PKI_DIR>/worker.pem``, ``.key``);
* with an OAuth2 client-credentials access token from the identity service, obtained
  by ``tls_client_auth`` (RFC 8705: the same certificate authenticates the worker at
  the token endpoint, and the token is bound to it, so a stolen token is useless
  without the key). Each job asks only for the scope it needs (``users:notify`` to
  notify sellers, ``users:read`` to read previews).

One :class:`~s2s_auth.client.token_manager.TokenManager` per scope and process fetches the
token on first use and reuses it for every call of every batch, refreshing it before
it expires (and once more on a 401 ``invalid_token``); a forked worker child gets its
own. ``fetch_count`` tells how many token requests were made.

Errors are split the way the task's retry policy needs them:
:class:`UsersServiceUnavailable` (connection refused, timeout, 408/425/429/5xx, a token
endpoint that is down) is worth retrying; :class:`UsersServiceRefused` (401/403 with
the ``error`` code UserService sent, a refused token request, any other unexpected
answer) is not: retrying would only repeat the refusal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

import requests
from django.conf import settings
from django.core.signals import setting_changed

from s2s_auth.client import ServiceClient, mtls_client, per_thread_client
from s2s_auth.client.token_manager import BearerTokenAuth, TokenEndpointError, TokenManager
from s2s_auth.conf import s2s_settings
from s2s_auth.identity import spiffe_id

__all__ = [
    "UsersServiceError",
    "UsersServiceRefused",
    "UsersServiceUnavailable",
    "call",
    "error_of",
    "refused",
    "reset",
    "token_manager",
    "users_client",
    "worker_spiffe_id",
]

logger = logging.getLogger(__name__)

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class UsersServiceError(Exception):
    """A call to UserService did not give the job what it needed."""


class UsersServiceUnavailable(UsersServiceError):
    """Transient: UserService (or its token endpoint) is down, slow or overloaded."""


class UsersServiceRefused(UsersServiceError):
    """Permanent: UserService refused the worker (or the request); do not retry.

    ``status`` is the HTTP status, ``error`` the reason code from the JSON body
    (``insufficient_scope``, ``invalid_token``, ``invalid_scope``…) when there was one.
    """

    def __init__(self, message: str, status: int | None = None, error: str = ""):
        super().__init__(message)
        self.status = status
        self.error = error


def worker_spiffe_id() -> str:
    return spiffe_id(settings.JOBS_IDENTITY)


# -- clients, one per scope ------------------------------------------------------------

_lock = threading.Lock()
_managers: dict[str, TokenManager] = {}
_clients: dict[str, Callable[[], ServiceClient]] = {}


def _build_token_manager(scope: str) -> TokenManager:
    conf = s2s_settings()
    name = settings.JOBS_IDENTITY
    return TokenManager(
        settings.JOBS_TOKEN_URL,
        client_id=name,
        cert=(conf.pki_dir / f"{name}.pem", conf.pki_dir / f"{name}.key"),
        auth_method="tls_client_auth",
        scope=scope,
        ca_bundle=conf.trust_anchors_path,
        timeout=settings.JOBS_USERS_TIMEOUT,
    )


def token_manager(scope: str) -> TokenManager:
    """This process's token manager for ``scope`` (created on first use)."""
    with _lock:
        manager = _managers.get(scope)
        if manager is None:
            manager = _managers[scope] = _build_token_manager(scope)
        return manager


def _build_client(scope: str) -> ServiceClient:
    return mtls_client(
        settings.USERS_SERVICE_URL,
        service_name=settings.JOBS_IDENTITY,
        timeout=settings.JOBS_USERS_TIMEOUT,
        auth=BearerTokenAuth(token_manager(scope)),
    )


def users_client(scope: str) -> ServiceClient:
    """A client to UserService presenting the worker's certificate and a token for ``scope``."""
    with _lock:
        get = _clients.get(scope)
        if get is None:
            get = _clients[scope] = per_thread_client(lambda: _build_client(scope))
    return get()


def reset() -> None:
    """Forget every client and token (settings changed, tests)."""
    with _lock:
        managers = list(_managers.values())
        _managers.clear()
        _clients.clear()
    for manager in managers:
        manager.close()


def _on_setting_changed(*, setting, **kwargs):
    if setting in ("S2S_AUTH", "USERS_SERVICE_URL") or setting.startswith("JOBS_"):
        reset()


setting_changed.connect(_on_setting_changed)


# -- calls -----------------------------------------------------------------------------


def call(
    scope: str,
    method: str,
    path: str,
    *,
    expected: Iterable[int] = (200,),
    **kwargs,
) -> requests.Response:
    """``method path`` on UserService with a token for ``scope``.

    Returns the response when its status is ``expected``; raises
    :class:`UsersServiceUnavailable` or :class:`UsersServiceRefused` otherwise.
    """
    what = f"{method} {path}"
    try:
        response = users_client(scope).request(method, path, **kwargs)
    except TokenEndpointError as exc:
        if exc.retryable:
            raise UsersServiceUnavailable(
                f"no access token for {scope!r}: {exc.error} ({exc})"
            ) from exc
        raise refused(what, exc.status, exc.error, f"token request refused: {exc}") from exc
    except requests.RequestException as exc:
        raise UsersServiceUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc
    status = response.status_code
    if status in set(expected):
        return response
    error, detail = error_of(response)
    if status in TRANSIENT_STATUS:
        raise UsersServiceUnavailable(f"{what}: HTTP {status} {error}".rstrip())
    raise refused(what, status, error, detail)


def refused(what: str, status: int | None, error: str, detail: str) -> UsersServiceRefused:
    """The permanent failure, logged loudly with UserService's reason code."""
    message = (
        f"UserService refused {what} by {worker_spiffe_id()}: "
        f"HTTP {status if status is not None else '-'} {error or 'no error code'}"
        + (f": {detail}" if detail else "")
    )
    logger.error("%s (not retried)", message)
    return UsersServiceRefused(message, status, error)


def error_of(response: requests.Response) -> tuple[str, str]:
    """The ``error`` code and ``detail`` of an s2s_auth / RFC 6749 JSON error body."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    if not isinstance(body, dict):
        return "", str(body)[:200]
    error = body.get("error")
    detail = body.get("detail") or body.get("error_description") or ""
    if not isinstance(error, str):
        return "", str(body)[:200]
    return error[:64], str(detail)[:300]
