"""Client side of OAuth2 client credentials (RFC 6749 §4.4): one token per process.

    manager = TokenManager("https://users:8001/oauth/token", client_id="ads",
                           client_secret=secret, scope="users:read", ca_bundle=ca_pem)
    client = ServiceClient("https://users:8001", ca_bundle=ca_pem,
                           auth=BearerTokenAuth(manager))

* The token is fetched on first use and shared by every thread and every target
  service that accepts it. Only one fetch is in flight at a time; other callers wait
  for it (and, if it fails, get its error instead of piling on more requests).
* A daemon thread refreshes the token at ``refresh_at`` (default 80 %) of its life,
  retrying transient failures (connection errors, timeouts, 408, 429, 5xx) with
  exponential backoff and jitter until the current token expires. A permanent error
  (400/401/403: ``invalid_client``, ``invalid_scope``…) is not retried: it raises
  :class:`TokenEndpointError` at the next ``token()`` that needs a new token.
* Fork-safe: in a child (gunicorn, Celery prefork, ``multiprocessing``) the lock,
  the refresher thread and the HTTP session of the parent are replaced
  (``os.register_at_fork`` plus a pid check). A still-valid token is kept — it is a
  bearer value, not a connection — and the child refreshes it on its own.
* Client authentication: ``client_secret_basic`` (default), ``client_secret_post``,
  ``tls_client_auth`` (RFC 8705: the certificate ``cert`` is presented over TLS; the
  issuer binds the token to it) and ``private_key_jwt`` (RFC 7523: an assertion signed
  with ``cert``'s key, its chain in ``x5c``).
* Renewed certificates: with ``tls_client_auth`` the token is bound to the certificate
  it was fetched with (RFC 8705); when the renewal agent replaces ``cert``'s files, the
  next ``token()`` fetches a new one over a connection presenting the new certificate
  (:mod:`s2s_auth.client.tls`), and ``private_key_jwt`` signs with the new key.
* Neither the client secret nor a token is ever logged; ``fetch_count`` counts the
  HTTP requests made to the token endpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote_plus

import requests

from s2s_auth.client.tls import ReloadingTLSAdapter, current_credentials, pinned
from s2s_auth.core.jose import CLIENT_AUTH_JWT_TYP, new_jti, sign
from s2s_auth.core.x509 import x5c_encode

__all__ = ["AUTH_METHODS", "BearerTokenAuth", "TokenEndpointError", "TokenManager"]

logger = logging.getLogger("s2s_auth.client.token_manager")

AUTH_METHODS = frozenset(
    {"client_secret_basic", "client_secret_post", "tls_client_auth", "private_key_jwt"}
)
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")
MAX_RESPONSE_BYTES = 65536  # a larger token response is not believed


class TokenEndpointError(Exception):
    """The token endpoint did not give us a token.

    ``error`` is the RFC 6749 §5.2 code when the endpoint sent one (``invalid_client``…),
    else a code of ours (``connection_failed``, ``timeout``, ``http_error``,
    ``invalid_response``); ``status`` the HTTP status if any; ``retryable`` whether
    trying again later may help.
    """

    def __init__(
        self, message: str, *, error: str, status: int | None = None, retryable: bool = False
    ):
        self.error = error
        self.status = status
        self.retryable = retryable
        super().__init__(message)


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    lifetime: float
    usable_until: float  # clock() value; a little before the real expiry
    refresh_at: float  # clock() value
    #: Fingerprint of the certificate the token is bound to (tls_client_auth), or "".
    bound_to: str = ""


_managers: weakref.WeakSet[TokenManager] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for manager in list(_managers):
        manager._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class TokenManager:
    """Fetches, caches and refreshes a client-credentials access token."""

    def __init__(
        self,
        token_url: str,
        *,
        client_id: str,
        client_secret: str | None = None,
        cert: tuple[str | os.PathLike, str | os.PathLike] | None = None,
        auth_method: str = "client_secret_basic",
        scope: str | Iterable[str] | None = None,
        resource: str | Iterable[str] | None = None,
        ca_bundle: str | os.PathLike | None = None,
        refresh_at: float = 0.8,
        timeout: float | tuple[float, float] = (2.0, 5.0),
        max_attempts: int = 4,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        default_expires_in: float = 300,
        assertion_audience: str | None = None,
        session_factory: Callable[[], requests.Session] = requests.Session,
        clock: Callable[[], float] = time.monotonic,
    ):
        if auth_method not in AUTH_METHODS:
            raise ValueError(f"auth_method must be one of {', '.join(sorted(AUTH_METHODS))}")
        if auth_method.startswith("client_secret") and not client_secret:
            raise ValueError(f"{auth_method} needs client_secret")
        if auth_method in ("tls_client_auth", "private_key_jwt") and not cert:
            raise ValueError(f"{auth_method} needs cert=(chain.pem, key.pem)")
        if not 0 < refresh_at < 1:
            raise ValueError("refresh_at is a fraction of the token's life, 0 < refresh_at < 1")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.cert = (str(cert[0]), str(cert[1])) if cert else None
        self.auth_method = auth_method
        self.scope = scope if scope is None or isinstance(scope, str) else " ".join(scope)
        self.resource = [resource] if isinstance(resource, str) else list(resource or [])
        self.ca_bundle = str(ca_bundle) if ca_bundle else None
        self.refresh_at = refresh_at
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.default_expires_in = default_expires_in
        self.assertion_audience = assertion_audience or token_url
        self._session_factory = session_factory
        self._clock = clock
        #: HTTP requests made to the token endpoint (attempts, including retries).
        self.fetch_count = 0
        self._token: _Token | None = None
        self._init_process_state()
        _managers.add(self)

    def __repr__(self) -> str:
        return f"<TokenManager client_id={self.client_id!r} url={self.token_url!r}>"

    # -- process-local state ---------------------------------------------------------
    def _init_process_state(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        self._fetching = False
        self._generation = 0  # bumped when a fetch ends
        self._last_error: TokenEndpointError | None = None
        self._session: requests.Session | None = None
        self._refresher: threading.Thread | None = None
        self._stop = threading.Event()

    def _reset_after_fork(self) -> None:
        """In a forked child: nothing of the parent's threads, locks or sockets."""
        if self._pid == os.getpid():
            return
        # The parent's session is dropped, not closed: its sockets belong to the parent.
        self._init_process_state()

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            self._reset_after_fork()

    # -- public ----------------------------------------------------------------------
    def token(self) -> str:
        """A valid access token, fetched (once, for every waiting thread) if needed."""
        self._check_fork()
        with self._cond:
            while True:
                current = self._token
                if self.usable(current):
                    break
                if not self._fetching:
                    self._fetching = True
                    current = None
                    break
                generation = self._generation
                while self._fetching and self._generation == generation:
                    self._cond.wait()
                if self._generation != generation and self._last_error is not None:
                    latest = self._token
                    if latest is None or self._clock() >= latest.usable_until:
                        raise self._last_error  # the fetch we waited for failed
        if current is None:
            current = self._fetch_claimed(deadline=None)
        self._ensure_refresher()
        return current.value

    def binding(self) -> str:
        """The fingerprint a token fetched now is bound to (tls_client_auth), else ""."""
        if self.auth_method != "tls_client_auth" or self.cert is None:
            return ""
        try:
            return current_credentials(*self.cert).fingerprint
        except (OSError, ValueError):
            return ""

    def usable(self, token: _Token | None) -> bool:
        """Unexpired, and bound to the certificate presented now (a renewed one
        makes it useless: the resource checks ``cnf`` against the connection)."""
        if token is None or self._clock() >= token.usable_until:
            return False
        return not token.bound_to or token.bound_to == self.binding()

    def invalidate(self, token: str | None = None) -> None:
        """Forget the current token (only if it is ``token``, when given)."""
        self._check_fork()
        with self._cond:
            if self._token is not None and (token is None or self._token.value == token):
                self._token = None

    def close(self) -> None:
        """Stop the refresher and close the HTTP session."""
        self._stop.set()
        thread = self._refresher
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        if self._session is not None and self._pid == os.getpid():
            self._session.close()
        self._session = None

    # -- fetching --------------------------------------------------------------------
    def _fetch_claimed(self, deadline: float | None) -> _Token:
        """Fetch with retries; the caller has set ``_fetching``. Wakes every waiter."""
        try:
            new = self._fetch_with_retries(deadline)
        except TokenEndpointError as exc:
            with self._cond:
                self._fetching = False
                self._generation += 1
                self._last_error = exc
                self._cond.notify_all()
            raise
        except BaseException:
            with self._cond:
                self._fetching = False
                self._generation += 1
                self._cond.notify_all()
            raise
        with self._cond:
            self._token = new
            self._fetching = False
            self._generation += 1
            self._last_error = None
            self._cond.notify_all()
        return new

    def _fetch_with_retries(self, deadline: float | None) -> _Token:
        """Up to ``max_attempts`` attempts, or (background) until ``deadline``."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._fetch_once()
            except TokenEndpointError as exc:
                if not exc.retryable:
                    logger.error(
                        "token request for client_id=%s refused: %s (status %s); not retrying",
                        self.client_id,
                        exc.error,
                        exc.status,
                    )
                    raise
                delay = self._backoff(attempt, getattr(exc, "retry_after", None))
                out_of_attempts = deadline is None and attempt >= self.max_attempts
                out_of_time = deadline is not None and self._clock() + delay >= deadline
                if out_of_attempts or out_of_time or self._stop.is_set():
                    logger.error(
                        "token request for client_id=%s failed after %d attempt(s): %s",
                        self.client_id,
                        attempt,
                        exc.error,
                    )
                    raise
                logger.warning(
                    "token request for client_id=%s failed (%s, status %s), attempt %d; "
                    "retrying in %.2fs",
                    self.client_id,
                    exc.error,
                    exc.status,
                    attempt,
                    delay,
                )
                if self._stop.wait(delay):
                    raise

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter, bounded by ``backoff_max``."""
        ceiling = min(self.backoff_max, self.backoff_initial * 2 ** (attempt - 1))
        delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not crypto
        if retry_after:
            delay = max(delay, min(retry_after, self.backoff_max))
        return delay

    def _session_for_process(self) -> requests.Session:
        if self._session is None:
            self._session = self._new_session()
        return self._session

    def _new_session(self) -> requests.Session:
        session = self._session_factory()
        session.trust_env = False  # REQUESTS_CA_BUNDLE must not replace `verify`
        if self.auth_method == "tls_client_auth" and self.cert is not None:
            # The current certificate on every new connection, pools recycled on renewal.
            session.mount("https://", ReloadingTLSAdapter(*self.cert, self.ca_bundle))
        return session

    def _request_kwargs(self) -> dict:
        data: dict[str, object] = {"grant_type": "client_credentials"}
        if self.scope:
            data["scope"] = self.scope
        if self.resource:
            data["resource"] = self.resource
        kwargs: dict[str, object] = {
            "timeout": self.timeout,
            "verify": self.ca_bundle or True,
            "allow_redirects": False,
            "headers": {"Accept": "application/json"},
        }
        if self.auth_method == "client_secret_basic":
            # RFC 6749 §2.3.1: both form-urlencoded before Basic encoding.
            kwargs["auth"] = (
                quote_plus(self.client_id),
                quote_plus(self._client_secret or ""),
            )
        elif self.auth_method == "client_secret_post":
            data["client_id"] = self.client_id
            data["client_secret"] = self._client_secret
        elif self.auth_method == "tls_client_auth":
            data["client_id"] = self.client_id
            kwargs["cert"] = self.cert
        else:  # private_key_jwt
            data["client_id"] = self.client_id
            data["client_assertion_type"] = CLIENT_ASSERTION_TYPE
            data["client_assertion"] = self.client_assertion()
        kwargs["data"] = data
        return kwargs

    def client_assertion(self) -> str:
        """RFC 7523 client assertion signed with ``cert``'s key, its chain in ``x5c``.

        Read from disk on each call, so a renewed certificate is picked up.
        """
        assert self.cert is not None
        current = current_credentials(*self.cert)
        chain, key = current.chain, current.private_key
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.assertion_audience,
            "iat": now,
            "exp": now + 60,
            "jti": new_jti(),
        }
        return sign(claims, key, typ=CLIENT_AUTH_JWT_TYP, headers={"x5c": x5c_encode(chain)})

    def _fetch_once(self) -> _Token:
        if self.cert is None or self.auth_method not in ("tls_client_auth", "private_key_jwt"):
            return self._post(None)
        try:
            credentials = current_credentials(*self.cert)
        except (OSError, ValueError) as exc:
            raise TokenEndpointError(
                f"client certificate unreadable: {exc}", error="certificate_unreadable"
            ) from exc
        with pinned(credentials):  # one pair for the connection, assertion and binding
            return self._post(credentials)

    def _post(self, credentials) -> _Token:
        session = self._session_for_process()
        kwargs = self._request_kwargs()
        started = self._clock()
        self.fetch_count += 1
        try:
            response = session.post(self.token_url, **kwargs)
            body = response.content
        except requests.Timeout as exc:
            raise TokenEndpointError(
                f"token endpoint timed out: {self.token_url}", error="timeout", retryable=True
            ) from exc
        except requests.RequestException as exc:
            raise TokenEndpointError(
                f"token endpoint unreachable: {self.token_url} ({type(exc).__name__})",
                error="connection_failed",
                retryable=True,
            ) from exc
        status = response.status_code
        payload = _json_object(body) if len(body) <= MAX_RESPONSE_BYTES else None
        if status != 200:
            error = payload.get("error") if payload else None
            code = error if isinstance(error, str) and _ERROR_CODE.fullmatch(error) else None
            exc = TokenEndpointError(
                f"token endpoint {self.token_url} answered {status}" + (f" {code}" if code else ""),
                error=code or "http_error",
                status=status,
                retryable=status in _RETRYABLE_STATUS,
            )
            exc.retry_after = _retry_after(response.headers.get("Retry-After"))
            raise exc
        token = self._parse_token(payload, started)
        if credentials is not None and self.auth_method == "tls_client_auth":
            token = dataclasses.replace(token, bound_to=credentials.fingerprint)
        return token

    def _parse_token(self, payload: dict | None, started: float) -> _Token:
        def invalid(why: str) -> TokenEndpointError:
            return TokenEndpointError(
                f"token endpoint {self.token_url} sent an invalid token response: {why}",
                error="invalid_response",
                status=200,
            )

        if payload is None:
            raise invalid("not a JSON object")
        value = payload.get("access_token")
        if not isinstance(value, str) or not _TOKEN_CHARS.fullmatch(value):
            raise invalid("no usable access_token")
        token_type = payload.get("token_type")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise invalid("token_type is not Bearer")
        expires_in = payload.get("expires_in", self.default_expires_in)
        if isinstance(expires_in, str) and expires_in.isdigit():
            expires_in = int(expires_in)
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
            raise invalid("expires_in is not a number")
        if expires_in <= 0:
            raise invalid("expires_in is not positive")
        lifetime = float(expires_in)
        # Stop using a token a little before it expires (in flight, clock skew).
        margin = min(5.0, lifetime * 0.05)
        logger.debug(
            "token obtained for client_id=%s from %s, expires_in=%ss",
            self.client_id,
            self.token_url,
            expires_in,
        )
        return _Token(
            value=value,
            lifetime=lifetime,
            usable_until=started + lifetime - margin,
            refresh_at=started + lifetime * self.refresh_at,
        )

    # -- background refresh ----------------------------------------------------------
    def _ensure_refresher(self) -> None:
        thread = self._refresher
        if thread is not None and thread.is_alive():
            return
        with self._cond:
            thread = self._refresher
            if (thread is not None and thread.is_alive()) or self._stop.is_set():
                return
            thread = threading.Thread(
                target=self._refresh_loop,
                name=f"s2s-token-refresh-{self.client_id}",
                daemon=True,
            )
            self._refresher = thread
            thread.start()

    def _refresh_loop(self) -> None:
        pid = os.getpid()
        stop = self._stop
        while not stop.is_set() and os.getpid() == pid:
            current = self._token
            if current is None:
                return  # the next token() fetches and restarts us
            delay = current.refresh_at - self._clock()
            if delay > 0:
                if stop.wait(min(delay, 60.0)):
                    return
                continue
            with self._cond:
                if self._token is not current:
                    continue  # refreshed meanwhile (a 401 retry, another thread)
                if self._fetching:
                    self._cond.wait(timeout=1.0)
                    continue
                self._fetching = True
            try:
                self._fetch_claimed(deadline=current.usable_until)
            except TokenEndpointError:
                return  # logged; at expiry token() tries again and raises if it must
            except Exception:  # never let the daemon die silently
                logger.exception("token refresh for client_id=%s crashed", self.client_id)
                return


def _json_object(body: bytes) -> dict | None:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


_INVALID_TOKEN = re.compile(r'\berror\s*=\s*"?invalid_token"?', re.IGNORECASE)


class BearerTokenAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <token>`` from a :class:`TokenManager`.

    On a 401 whose ``WWW-Authenticate`` says ``error="invalid_token"`` (RFC 6750 §3.1:
    expired, or signed with a key the resource no longer knows), the token is
    dropped, a new one fetched and the request sent again, once.
    """

    def __init__(self, manager: TokenManager):
        self.manager = manager

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self.manager.token()
        request.headers["Authorization"] = f"Bearer {token}"
        request._s2s_bearer = token  # type: ignore[attr-defined]
        request.register_hook("response", self._retry_on_invalid_token)
        return request

    def _retry_on_invalid_token(self, response: requests.Response, **kwargs):
        if response.status_code != 401:
            return response
        if not _INVALID_TOKEN.search(response.headers.get("WWW-Authenticate", "")):
            return response
        request = response.request
        if getattr(request, "_s2s_retried", False):
            return response
        if request.body is not None and not isinstance(request.body, bytes | str):
            return response  # a streamed body cannot be sent twice
        self.manager.invalidate(getattr(request, "_s2s_bearer", None))
        token = self.manager.token()
        response.content  # noqa: B018 - drain, so the connection can be reused
        response.close()
        retry = request.copy()
        retry._s2s_retried = True  # type: ignore[attr-defined]
        retry._s2s_bearer = token  # type: ignore[attr-defined]
        retry.headers["Authorization"] = f"Bearer {token}"
        new_response = response.connection.send(retry, **kwargs)
        new_response.history.append(response)
        new_response.request = retry
        return new_response
