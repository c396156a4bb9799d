"""This service's certificate as a client presents it, picked up again when renewed.

The renewal agent replaces ``NAME.pem``/``NAME.key`` in place (:mod:`s2s_auth.agent`).
A long-running client — a gunicorn worker's ``ServiceClient``, a Celery worker's, a
``TokenManager`` — must present the new certificate without a restart and without
failing a call in flight:

* :func:`current_credentials` stats both files on each call (two ``stat`` calls, no
  read) and reloads the pair when either changed, with
  :func:`s2s_auth.core.files.read_pair` (which never returns a mismatched pair).
* :class:`ReloadingTLSAdapter` builds its ``SSLContext`` from those credentials in
  memory (``requests`` would otherwise let OpenSSL read both files on every new
  connection, and could catch them mid-renewal). When the certificate changes it
  builds a new context and clears its connection pools: idle keep-alive connections
  made with the old certificate are closed, a connection in use finishes its call
  (the old certificate is valid until it expires) and is closed when returned, and
  every new connection presents the new certificate. So a pooled connection never
  outlives the certificate it was made with by more than one call.
* :func:`pinned` holds one snapshot for a whole call: the TLS connection, the
  service JWT's key and ``kid``, and the certificate a bound token is checked
  against all come from the same pair, even if the files change during the call.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter

from s2s_auth.core.issuance import certs_pem, key_pem

__all__ = ["ReloadingTLSAdapter", "client_context", "current_credentials", "pinned"]

_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[tuple, object]] = {}
_pinned: ContextVar[object | None] = ContextVar("s2s_pinned_credentials", default=None)


def _stamp(path: str) -> tuple:
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _key(cert_path, key_path) -> tuple[str, str]:
    return str(Path(cert_path)), str(Path(key_path))


def current_credentials(cert_path, key_path):
    """The :class:`~s2s_auth.client.auth.ServiceCredentials` in these files now
    (the pinned ones inside :func:`pinned` for the same files)."""
    from s2s_auth.client.auth import ServiceCredentials

    key = _key(cert_path, key_path)
    held = _pinned.get()
    if held is not None and _key(held.cert_path, held.key_path) == key:
        return held
    stamp = (_stamp(key[0]), _stamp(key[1]))
    cached = _cache.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        # The stamp was taken before the read: a change during it is seen next time.
        credentials = ServiceCredentials.from_files(*key)
        _cache[key] = (stamp, credentials)
        return credentials


@contextlib.contextmanager
def pinned(credentials) -> Iterator[None]:
    """Inside, :func:`current_credentials` for these files returns ``credentials``."""
    token = _pinned.set(credentials)
    try:
        yield
    finally:
        _pinned.reset(token)


def _load_chain(context: ssl.SSLContext, pem: bytes, near: Path) -> None:
    """``load_cert_chain`` from memory: a memfd on Linux, else a 0600 temporary file
    next to the key (removed at once). The ssl module reads chains from paths only."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("s2s-client-cert", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, pem)
            context.load_cert_chain(f"/proc/self/fd/{fd}")
            return
        except FileNotFoundError:  # pragma: no cover - no /proc
            pass
        finally:
            os.close(fd)
    fd, path = tempfile.mkstemp(dir=near, prefix=".s2s-client-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)


def client_context(credentials, ca_bundle: str | None) -> ssl.SSLContext:
    """A client context: the server verified against ``ca_bundle`` (host name
    included), this service's chain and key presented."""
    context = ssl.create_default_context(cafile=ca_bundle)
    pem = certs_pem(*credentials.chain) + key_pem(credentials.private_key)
    _load_chain(context, pem, Path(credentials.key_path).parent)
    return context


class ReloadingTLSAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` presenting the current certificate of ``(cert_path,
    key_path)`` on https, verifying servers against ``ca_bundle`` (see the module
    docstring). ``requests``' own ``cert``/``verify`` are not used on https."""

    def __init__(self, cert_path, key_path, ca_bundle=None, **kwargs):
        self._files = _key(cert_path, key_path)
        self._ca = str(ca_bundle) if ca_bundle else None
        self._context_lock = threading.Lock()
        self._fingerprint: str | None = None
        self._context: ssl.SSLContext | None = None
        super().__init__(**kwargs)

    @property
    def fingerprint(self) -> str | None:
        """The certificate the pools' connections present (None before the first)."""
        return self._fingerprint

    def context(self) -> ssl.SSLContext:
        credentials = current_credentials(*self._files)
        if credentials.fingerprint == self._fingerprint:
            return self._context
        with self._context_lock:
            if credentials.fingerprint != self._fingerprint:
                context = client_context(credentials, self._ca)
                renewed = self._fingerprint is not None
                self._context, self._fingerprint = context, credentials.fingerprint
                if renewed:
                    # Idle connections of the old certificate closed now; one in use
                    # finishes its call and is closed when it comes back.
                    self.poolmanager.clear()
            return self._context

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, None
        )
        if host_params.get("scheme") == "https":
            if verify is False:
                raise ValueError("ReloadingTLSAdapter always verifies the server")
            pool_kwargs = {"ssl_context": self.context(), "cert_reqs": "CERT_REQUIRED"}
        return host_params, pool_kwargs

    def cert_verify(self, conn, url, verify, cert):
        if urlsplit(url).scheme.lower() == "https":
            return  # the context carries the trust anchors and the client certificate
        super().cert_verify(conn, url, verify, cert)
