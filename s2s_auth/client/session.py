"""ServiceClient: the one way a service calls another.

A ``requests.Session`` bound to one target service (its base URL). It ignores the
proxy/CA environment (``trust_env`` off: ``REQUESTS_CA_BUNDLE`` would otherwise
silently replace ``verify``), pins the CA bundle per request, sets timeouts,
refuses URLs outside its base URL (credentials never leave for another host) and
does not follow redirects. Credentials are attached by ``requests`` auth hooks and
the client certificate, so each mechanism stays a small, separate piece.

The client certificate is presented by a :class:`~s2s_auth.client.tls.ReloadingTLSAdapter`:
when the renewal agent replaces ``NAME.pem``/``NAME.key``, the next call presents the
new certificate on a new connection (pooled ones made with the old are closed), and
each call uses one snapshot of the pair for its connection, its service JWT and the
certificate its bound token is checked against (:func:`~s2s_auth.client.tls.pinned`).

User context: given a :class:`~s2s_auth.client.exchange.TokenExchanger`
(``user_context``) and the target's name (``audience``), a call made inside
``end_user_context(user_token)`` carries a token exchanged for the target alone, in
``S2S-End-User-Token`` (a service JWT commits to it by ``ath``); the user's own token
stays here. Without one, ``ServiceJWTAuth`` forwards the user's own token: the opt-in
for peers that cannot exchange (they must set ``ACCEPT_FORWARDED_USER_TOKENS``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import requests

from s2s_auth.client.auth import _end_user_token, end_user_context
from s2s_auth.client.tls import ReloadingTLSAdapter, current_credentials, pinned
from s2s_auth.conf import s2s_settings
from s2s_auth.core.wire import END_USER_TOKEN_HEADER

if TYPE_CHECKING:
    from s2s_auth.client.exchange import TokenExchanger

__all__ = ["ServiceClient", "mtls_client", "per_thread_client"]


class ServiceClient(requests.Session):
    """Session for calls to the service at ``base_url``.

    ``ca_bundle``: the private CA (PEM path) that the target's server certificate
    must chain to; ``cert``: this service's ``(chain.pem, key.pem)`` for mTLS;
    ``auth``: a ``requests`` auth hook that adds per-request credentials.
    """

    def __init__(
        self,
        base_url: str,
        *,
        ca_bundle: str | os.PathLike | None = None,
        cert: tuple[str | os.PathLike, str | os.PathLike] | None = None,
        auth: requests.auth.AuthBase | None = None,
        timeout: float | tuple[float, float] | None = None,
        user_context: TokenExchanger | None = None,
        audience: str | None = None,
    ):
        if user_context is not None and not audience:
            raise ValueError("ServiceClient(user_context=...) needs the target's audience")
        super().__init__()
        self.user_context = user_context
        self.audience = audience
        self.trust_env = False
        self.base_url = base_url.rstrip("/") + "/"
        self._origin = _origin(self.base_url)
        self.ca_bundle = str(ca_bundle) if ca_bundle else None
        self.verify = self.ca_bundle or True
        self.cert = cert
        self.auth = auth
        self.timeout = timeout if timeout is not None else tuple(s2s_settings().CLIENT_TIMEOUT)

    @property
    def cert(self) -> tuple[str, str] | None:
        """``(chain.pem, key.pem)`` presented on https; assigning it remounts the adapter."""
        return self.__dict__.get("_cert")

    @cert.setter
    def cert(self, value) -> None:
        if isinstance(value, str | bytes | os.PathLike):
            raise TypeError("ServiceClient.cert is (chain.pem, key.pem): two files")
        cert = (str(value[0]), str(value[1])) if value else None
        self.__dict__["_cert"] = cert
        if "adapters" not in self.__dict__:  # requests.Session.__init__ (cert=None)
            return
        self.tls_adapter = (
            ReloadingTLSAdapter(*cert, getattr(self, "ca_bundle", None)) if cert else None
        )
        self.mount("https://", self.tls_adapter or requests.adapters.HTTPAdapter())

    def request(self, method: str, url: str, *args, **kwargs) -> requests.Response:
        if self.cert is None:
            return self._request(method, url, *args, **kwargs)
        with pinned(current_credentials(*self.cert)):
            return self._request(method, url, *args, **kwargs)

    def _request(self, method: str, url: str, *args, **kwargs) -> requests.Response:
        full_url = urljoin(self.base_url, url.lstrip("/")) if "://" not in url else url
        if _origin(full_url) != self._origin:
            raise ValueError(
                f"ServiceClient for {self.base_url} refuses to send a request to {full_url}"
            )
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        if self.ca_bundle:
            kwargs["verify"] = self.ca_bundle
        user_token = _end_user_token.get()
        if not user_token or self.user_context is None:
            return super().request(method, full_url, *args, **kwargs)
        exchanged = self.user_context.token_for(user_token, str(self.audience))
        kwargs["headers"] = {**(kwargs.get("headers") or {}), END_USER_TOKEN_HEADER: exchanged}
        with end_user_context(exchanged):  # what a ServiceJWTAuth commits to
            return super().request(method, full_url, *args, **kwargs)


def mtls_client(
    base_url: str,
    *,
    service_name: str | None = None,
    timeout: float | tuple[float, float] | None = None,
    auth: requests.auth.AuthBase | None = None,
    user_context: TokenExchanger | None = None,
    audience: str | None = None,
) -> ServiceClient:
    """A client presenting this service's certificate from the PKI directory.

    Uses ``<PKI_DIR>/<name>.pem`` and ``.key`` (``name`` defaults to
    ``S2S_AUTH["SERVICE_NAME"]``) and verifies the server against the trust anchors.
    """
    conf = s2s_settings()
    name = service_name or conf.SERVICE_NAME
    if not name:
        raise ValueError("mtls_client needs service_name or S2S_AUTH['SERVICE_NAME']")
    pki = conf.pki_dir
    return ServiceClient(
        base_url,
        ca_bundle=conf.trust_anchors_path,
        cert=(pki / f"{name}.pem", pki / f"{name}.key"),
        timeout=timeout,
        auth=auth,
        user_context=user_context,
        audience=audience,
    )


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def per_thread_client(factory: Callable[[], ServiceClient]) -> Callable[[], ServiceClient]:
    """Wrap ``factory`` so each thread of each process gets one long-lived client.

    One client per thread keeps connections alive between calls without sharing a
    session across threads; a fork (gunicorn, Celery prefork) gets fresh clients
    instead of inheriting the parent's sockets.
    """
    local = threading.local()

    def get() -> ServiceClient:
        if getattr(local, "pid", None) != os.getpid():
            local.client = factory()
            local.pid = os.getpid()
        return local.client

    get.cache_clear = lambda: local.__dict__.clear()  # type: ignore[attr-defined]
    return get
