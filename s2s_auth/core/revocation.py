"""Revocation that reaches every host: CRLs fetched from the CA host and cached.

The identity service publishes the CRL of each CA at ``<CRL_URL>/<key id>.crl``
(:mod:`s2s_auth.issuer.crl`). A verifier that is not the CA host holds one
:class:`CRLCache` per CA of the paths it validates, with the rules of the JWKS cache
(:mod:`s2s_auth.core.jwks`):

* Fetched with ``requests`` (``trust_env`` off: ``REQUESTS_CA_BUNDLE`` and proxy
  variables ignored; no redirects; timeouts; a size limit); over ``https`` the CA host
  must present a certificate that chains to our trust anchors.
* A fetched CRL is used only if it is the CRL of the CA it is asked for: issuer name
  equal to the CA's subject, authority key identifier (when present) equal to the CA's
  key id, signature valid with the CA's public key (``cryptography``), a nextUpdate
  still ahead, and a CRL number not lower than the one held (an old CRL replayed by
  whoever sits on the path does not bring back a revoked certificate). Anything else
  is a failed fetch: the previous CRL stays in use.
* Fresh for ``CRL_REFRESH_SECONDS``; after that the next verification refreshes it
  while other threads go on with the CRL they have (one fetch in flight); fetch
  attempts are at least ``CRL_MIN_REFETCH_SECONDS`` apart, whatever their outcome.
* While the CA host is unreachable the last good CRL serves until its nextUpdate;
  after that, and when no CRL was ever fetched, :class:`CRLUnavailable` (503
  ``crl_unavailable``): never an acceptance.

Where a CRL is fetched from (SSRF): ``<CRL_URL>/<key id of the CA>.crl``, derived from
settings; a certificate's CRL Distribution Point is followed only when the certificate
belongs to a path already validated to our trust anchors *and* the URL's origin is in
``CRL_ALLOWED_ORIGINS`` (default: CRL_URL's origin). A distribution point anywhere
else is ignored, never fetched.

The CA host itself does not fetch its own CRLs over HTTP (it would wait on its own
busy workers, as :class:`~s2s_auth.core.jwks.LocalJWKS` explains for keys): it reads
``crl.pem`` and re-signs it before nextUpdate (:class:`LocalCRLRefresher`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from s2s_auth.core.ca import CertificateAuthority, PKIError
from s2s_auth.core.fetch import CachedDocument
from s2s_auth.core.issuance import crl_url_for
from s2s_auth.core.x509 import fingerprint
from s2s_auth.errors import S2SError

__all__ = [
    "MAX_CRL_BYTES",
    "CRLCache",
    "CRLFetcher",
    "CRLUnavailable",
    "LocalCRLRefresher",
    "distribution_point_urls",
    "is_local_ca_host",
    "origin",
    "register_local_ca",
]

logger = logging.getLogger("s2s_auth.core.revocation")

#: Largest CRL accepted from the CA host.
MAX_CRL_BYTES = 1 << 20
#: Most CRLs (one per CA and URL) a process keeps.
MAX_CACHES = 256


class CRLUnavailable(S2SError):
    """No current CRL of a CA of the path: never fetched, or the one held is past its
    nextUpdate and the CA host cannot be reached (fail closed)."""

    code = "crl_unavailable"

    def __init__(self, detail: str, *, retry_after: float = 0):
        super().__init__(self.code, detail)
        self.retry_after = retry_after


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, lowercased (the default port omitted)."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        return ""
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{parts.scheme.lower()}://{host}{suffix}"


def distribution_point_urls(cert: x509.Certificate) -> list[str]:
    """The full-name URIs of ``cert``'s CRL Distribution Points (none: [])."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [
        name.value
        for point in points
        for name in (point.full_name or [])
        if isinstance(name, x509.UniformResourceIdentifier)
    ]


def _current(crl: x509.CertificateRevocationList | None, now: dt.datetime) -> bool:
    return crl is not None and crl.next_update_utc is not None and now <= crl.next_update_utc


def _number(crl: x509.CertificateRevocationList) -> int:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except (x509.ExtensionNotFound, ValueError):
        return -1


def _key_id(issuer: x509.Certificate) -> bytes:
    return x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest


def _load_crl(body: bytes) -> x509.CertificateRevocationList:
    if body.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_crl(body)
    return x509.load_der_x509_crl(body)


class CRLCache(CachedDocument):
    """The CRL of one CA (``issuer``) fetched from ``url``, thread-safe.

    ``fetch_count`` counts HTTP attempts; ``generation`` grows with every new CRL taken.
    """

    what = "CRL"
    source = "crl"
    accept = "application/pkix-crl"
    max_bytes = MAX_CRL_BYTES

    def __init__(
        self,
        url: str,
        issuer: x509.Certificate,
        *,
        refresh_seconds: float = 30,
        min_refetch_seconds: float = 5,
        **options,
    ):
        super().__init__(url, min_refetch_seconds=min_refetch_seconds, **options)
        self.issuer = issuer
        self.refresh_seconds = float(refresh_seconds)
        self._crl: x509.CertificateRevocationList | None = None
        self.generation = 0

    @property
    def crl(self) -> x509.CertificateRevocationList | None:
        """The CRL held (possibly past its nextUpdate), None before the first fetch."""
        return self._crl

    def held(self) -> bool:
        return self._crl is not None

    def due(self) -> bool:
        return self._clock() - self._fetched_at >= self.refresh_seconds

    def get(self, now: dt.datetime | None = None) -> x509.CertificateRevocationList:
        """A current CRL of the CA, refreshed when older than ``refresh_seconds``.

        Raises :class:`CRLUnavailable` when none is held whose nextUpdate is ahead.
        """
        now = now or dt.datetime.now(dt.UTC)
        crl = self._crl
        if _current(crl, now):
            if not self.due():
                return crl
            # Due: one thread fetches, the others verify with the CRL they have.
            if self._lock.acquire(blocking=False):
                try:
                    self._refresh_locked(now)
                finally:
                    self._lock.release()
            newest = self._crl
            return newest if _current(newest, now) else crl
        # None held, or the one held is past nextUpdate: wait for a (rate-limited) fetch.
        with self._lock:
            if not _current(self._crl, now):
                self._refresh_locked(now)
            crl = self._crl
        if not _current(crl, now):
            raise self._unavailable(crl)
        return crl

    # -- internals -------------------------------------------------------------------
    def _unavailable(self, held) -> CRLUnavailable:
        wait = max(0.0, self._attempted_at + self.min_refetch_seconds - self._clock())
        name = self.issuer.subject.rfc4514_string()
        what = (
            f"the CRL held expired at {held.next_update_utc.isoformat()}"
            if held is not None
            else "no CRL was ever fetched"
        )
        return CRLUnavailable(
            f"No current CRL of {name}: {what}, and {self.url} could not be fetched "
            f"({self.last_error or 'not tried yet'}).",
            retry_after=math.ceil(wait) or 1,
        )

    def _refresh_locked(self, now: dt.datetime) -> None:
        if self._clock() - self._attempted_at < self.min_refetch_seconds:
            return
        crl = self._attempt(lambda body: self.check(_load_crl(body), now))
        if crl is None:
            return
        held = self._crl
        if held is None or crl.fingerprint(hashes.SHA256()) != held.fingerprint(hashes.SHA256()):
            self.generation += 1
        self._crl = crl

    def check(self, crl: x509.CertificateRevocationList, now: dt.datetime):
        """``crl`` if it is a current CRL of our CA, not older than the one held;
        ValueError (a failed fetch) otherwise."""
        issuer = self.issuer
        if crl.issuer != issuer.subject:
            raise ValueError(
                f"CRL issuer {crl.issuer.rfc4514_string()} is not {issuer.subject.rfc4514_string()}"
            )
        try:
            aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        except x509.ExtensionNotFound:
            aki = None
        if aki is not None and aki.key_identifier not in (None, _key_id(issuer)):
            raise ValueError("CRL is signed for another key of that CA name")
        try:
            valid = crl.is_signature_valid(issuer.public_key())
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise ValueError("CRL signature does not verify with the CA's key")
        if crl.next_update_utc is None:
            raise ValueError("CRL has no nextUpdate")
        if now > crl.next_update_utc:
            raise ValueError(f"CRL expired at {crl.next_update_utc.isoformat()}")
        held = self._crl
        if held is not None and _number(crl) < _number(held):
            raise ValueError(
                f"CRL number {_number(crl)} is older than the one held ({_number(held)})"
            )
        return crl


class CRLFetcher:
    """The fetched CRLs of every CA a verifier meets: one :class:`CRLCache` per CA."""

    def __init__(
        self,
        base_url: str,
        *,
        allowed_origins: list[str] | tuple[str, ...] | None = None,
        **cache_options,
    ):
        if urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError(f"CRL_URL must be http(s): {base_url!r}")
        self.base_url = base_url.rstrip("/")
        origins = allowed_origins if allowed_origins else [base_url]
        self.allowed_origins = frozenset(origin(o) for o in origins)
        self._options = cache_options
        self._caches: dict[tuple[str, str], CRLCache] = {}
        self._lock = threading.Lock()

    def url_for(self, cert: x509.Certificate | None, issuer: x509.Certificate) -> str:
        """Where the CRL of ``issuer`` (which issued ``cert``, a certificate of a
        validated path) is fetched: ``cert``'s distribution point when its origin is
        allowed, else (or with no ``cert``) ``<CRL_URL>/<issuer key id>.crl``."""
        for url in distribution_point_urls(cert) if cert is not None else []:
            if origin(url) in self.allowed_origins:
                return url
            logger.info("CRL distribution point %s ignored: origin not allowed", url)
        return crl_url_for(self.base_url, issuer)

    def cache_for(self, cert: x509.Certificate | None, issuer: x509.Certificate) -> CRLCache:
        key = (self.url_for(cert, issuer), fingerprint(issuer))
        cache = self._caches.get(key)
        if cache is None:
            with self._lock:
                cache = self._caches.get(key)
                if cache is None:
                    if len(self._caches) >= MAX_CACHES:
                        self._caches.clear()
                    cache = self._caches[key] = CRLCache(key[0], issuer, **self._options)
        return cache

    def crl_for(
        self, cert: x509.Certificate, issuer: x509.Certificate, now: dt.datetime | None = None
    ) -> x509.CertificateRevocationList:
        """A current, verified CRL of ``issuer``; :class:`CRLUnavailable` otherwise."""
        return self.cache_for(cert, issuer).get(now)

    def state(self) -> tuple:
        """Refresh the CRLs that are due (without waiting on another thread's fetch)
        and return something that changes whenever a CRL held changes: a verifier
        reuses a recent success only while this stays the same."""
        caches = self.caches()
        now = dt.datetime.now(dt.UTC)
        for cache in caches:
            if cache.due():
                with contextlib.suppress(CRLUnavailable):  # the verification will say so
                    cache.get(now)
        return tuple(sorted((c.url, c.generation, _current(c.crl, now)) for c in caches))

    def caches(self) -> list[CRLCache]:
        with self._lock:  # not while another thread adds one
            return list(self._caches.values())


class LocalCRLRefresher:
    """On the CA host: re-sign ``crl.pem`` before nextUpdate, checked at most every
    ``check_every`` seconds (a verification calls it before reading the file)."""

    def __init__(
        self,
        ca: CertificateAuthority,
        *,
        check_every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ca = ca
        self.check_every = float(check_every)
        self._clock = clock
        self._checked = -math.inf

    def __call__(self) -> None:
        if self._clock() - self._checked < self.check_every:
            return
        self._checked = self._clock()
        try:
            if self.ca.refresh_crl():
                logger.info("CRLs in %s re-signed before nextUpdate", self.ca.crl_path)
        except (PKIError, OSError, ValueError) as exc:
            logger.warning("CRLs in %s not re-signed: %s", self.ca.crl_path, exc)


# The identity service registers itself here when installed (the core never imports it).
_local_ca_host = False


def register_local_ca() -> None:
    """This process is the CA host (``s2s_auth.issuer`` installed): it reads and
    re-signs its own CRLs rather than fetching them."""
    global _local_ca_host
    _local_ca_host = True


def is_local_ca_host(pki_dir, trust_domain: str) -> bool:
    """Registered as the CA host, and the CA is in ``pki_dir``."""
    if not _local_ca_host:
        return False
    try:
        return CertificateAuthority(pki_dir, trust_domain).initialized
    except PKIError:
        return False
