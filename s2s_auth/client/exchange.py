"""Client side of token exchange (RFC 8693): the user's token for one per target.

    exchanger = TokenExchanger("https://users:8001/oauth/token", client_id="ads",
                               cert=(ads_pem, ads_key), auth_method="tls_client_auth",
                               ca_bundle=ca_pem)
    client = ServiceClient("https://users:8001", ca_bundle=ca_pem, cert=(ads_pem, ads_key),
                           auth=..., user_context=exchanger, audience="users")
    with end_user_context(user_token):
        client.get(...)   # carries a token minted for users, naming ads in `act`

The user's own token never leaves this service: the next one gets a token for itself
alone, which a service that lifts it cannot use anywhere else. Exchanged tokens are
cached per (user token, audience) until shortly before they expire; one exchange per
key is in flight at a time (other threads wait for it); the cache is bounded and
starts empty in a forked child. Client authentication, retries with backoff and the
response checks are :class:`~s2s_auth.client.token_manager.TokenManager`'s.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import requests

from s2s_auth.client.token_manager import TokenEndpointError, TokenManager, _Token
from s2s_auth.identity import is_spiffe_id, spiffe_id

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "GRANT_TYPE",
    "TokenExchanger",
    "UserContextUnavailable",
]

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105


class UserContextUnavailable(requests.RequestException):
    """The user's token could not be exchanged: the call is not made (a caller that
    handles ``requests`` errors degrades as it would for a service that is down).
    ``error`` is the token endpoint's code (``invalid_grant``: the user's token expired)."""

    def __init__(self, cause: TokenEndpointError):
        super().__init__(f"user context not exchanged: {cause.error}")
        self.error = cause.error
        self.status = cause.status


class _ExchangeEndpoint(TokenManager):
    """A TokenManager that posts one exchange form instead of client credentials."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._local = threading.local()

    def _session_for_process(self) -> requests.Session:
        # One session per thread: exchanges for several users run concurrently.
        session = getattr(self._local, "session", None)
        if session is None or getattr(self._local, "pid", None) != os.getpid():
            session = self._new_session()
            self._local.session, self._local.pid = session, os.getpid()
        return session

    def _request_kwargs(self) -> dict:
        kwargs = super()._request_kwargs()
        data = kwargs["data"]
        data.pop("scope", None)
        data.pop("resource", None)
        data.update(self._local.form)
        return kwargs

    def exchange(self, form: dict) -> _Token:
        self._check_fork()
        self._local.form = form
        try:
            return self._fetch_with_retries(deadline=None)
        finally:
            del self._local.form


class TokenExchanger:
    """Exchanges end users' tokens for tokens per target audience, cached.

    Keyword arguments are :class:`TokenManager`'s (client authentication, CA bundle,
    timeouts, retries). ``maxsize`` bounds the cache (least recently used dropped).
    """

    def __init__(
        self,
        token_url: str,
        *,
        client_id: str,
        maxsize: int = 1024,
        clock: Callable[[], float] = time.monotonic,
        **manager_options,
    ):
        manager_options.setdefault("max_attempts", 2)
        self._endpoint = _ExchangeEndpoint(
            token_url, client_id=client_id, clock=clock, **manager_options
        )
        self.maxsize = maxsize
        self._clock = clock
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], _Token] = OrderedDict()
        self._flights: dict[tuple[str, str], threading.Lock] = {}

    @property
    def exchange_count(self) -> int:
        """HTTP requests made to the token endpoint (attempts, including retries)."""
        return self._endpoint.fetch_count

    def token_for(self, user_token: str, audience: str) -> str:
        """A token for ``audience`` (a service name or SPIFFE ID) carrying the user of
        ``user_token``; from the cache while it is usable. Raises UserContextUnavailable."""
        if self._pid != os.getpid():
            self._reset()
        target = audience if is_spiffe_id(audience) else spiffe_id(audience)
        key = (hashlib.sha256(user_token.encode()).hexdigest(), target)
        with self._lock:
            cached = self._cached(key)
            if cached is not None:
                return cached
            flight = self._flights.setdefault(key, threading.Lock())
        with flight:
            with self._lock:
                cached = self._cached(key)
            if cached is not None:
                return cached
            try:
                token = self._endpoint.exchange(
                    {
                        "grant_type": GRANT_TYPE,
                        "subject_token": user_token,
                        "subject_token_type": ACCESS_TOKEN_TYPE,
                        "audience": target,
                    }
                )
            except TokenEndpointError as exc:
                with self._lock:
                    self._flights.pop(key, None)
                raise UserContextUnavailable(exc) from exc
            with self._lock:
                self._cache[key] = token
                self._cache.move_to_end(key)
                while len(self._cache) > self.maxsize:
                    self._cache.popitem(last=False)
                self._flights.pop(key, None)
        return token.value

    def _cached(self, key) -> str | None:
        token = self._cache.get(key)
        if token is None:
            return None
        if not self._endpoint.usable(token):  # expired, or bound to a renewed certificate
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return token.value

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def close(self) -> None:
        self._endpoint.close()
