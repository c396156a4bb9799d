"""Verification of a presented client certificate chain (no DRF, no requests).

:class:`PeerVerifier` answers "who is this peer?" for a chain (leaf first) presented
over mTLS or in an ``x5c`` header: it checks validity, EKU clientAuth, the path to a
configured trust anchor (with ``cryptography.x509.verification``; no path validation
is written here), revocation against a CRL, and the SPIFFE ID in the trust domain.
A rejection raises :class:`~s2s_auth.core.x509.CertificateRejected` with a short
reason ``code``:

==========================  ======================================================
``malformed_certificate``   the chain could not be parsed (or is empty/too long)
``not_yet_valid``           now < leaf notBefore
``expired``                 now > leaf notAfter
``missing_client_auth_eku`` no EKU extension, or it lacks id-kp-clientAuth
``untrusted_chain``         no valid path to a trust anchor (other CA, self-signed,
                            wrong constraints, expired intermediate, ...)
``trust_anchors_unavailable`` the anchors file is missing or unreadable
``crl_unavailable``         no CRL file (or none from the issuer of a certificate of
                            the path) and REQUIRE_CRL is on; with CRL_URL, no current
                            CRL of a CA of the path could be fetched
``crl_invalid``             the CRL file cannot be parsed, or its signature does
                            not verify with the issuer's key
``crl_stale``               a CRL's nextUpdate has passed, or it has none and was
                            issued more than ``crl_max_age`` seconds ago
``revoked``                 the leaf, or a CA above it, is listed in its issuer's CRL
``missing_spiffe_id``       no ``spiffe://`` URI SAN
``bad_spiffe_id``           malformed SPIFFE ID, a second URI SAN beside it (an
                            X509-SVID has exactly one), or a path that names no
                            service (:func:`s2s_auth.identity.name_from_path`)
``foreign_trust_domain``    the SPIFFE ID's trust domain is not ours
==========================  ======================================================

Peers may present their leaf alone (``getpeercert(True)`` before Python 3.13 gives no
chain): intermediates are then taken from the non-self-signed certificates of the
anchors bundle and from ``intermediates_path`` (``intermediates.pem`` next to the
anchors, written by ``s2s_pki``). They help build the path; they are never anchors.

Revocation is checked for every certificate of the validated path below the trust
anchor, each against its issuer's CRL (so an intermediate can be revoked): the CRL file
may hold several CRLs, one per CA (``s2s_pki`` writes the intermediate's and the root's).

Anchors and the CRL are read once and re-read when the file changes (inode, size or
mtime), so a new CRL takes effect without a restart.

With ``S2S_AUTH["CRL_URL"]`` set the CRLs come from the CA host instead
(:mod:`s2s_auth.core.revocation`): fetched per CA of the path, cached, verified against
that CA; none current is ``crl_unavailable`` (fail closed, whatever REQUIRE_CRL says).
The CA host itself keeps reading ``crl.pem`` and re-signs it before nextUpdate.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from django.core.signals import setting_changed

from s2s_auth.conf import s2s_settings
from s2s_auth.core.ca import CertificateAuthority
from s2s_auth.core.revocation import (
    CRLFetcher,
    CRLUnavailable,
    LocalCRLRefresher,
    is_local_ca_host,
)
from s2s_auth.core.x509 import CertificateRejected, fingerprint, parse_pem_chain, uri_sans
from s2s_auth.identity import SpiffeIDError, is_spiffe_id, name_from_path, parse_spiffe_id

__all__ = [
    "INTERMEDIATES_FILE",
    "PeerVerifier",
    "VerifiedPeer",
    "peer_verifier",
    "warm_up_crls",
]

#: Bundle of untrusted intermediates looked for next to the trust anchors file.
INTERMEDIATES_FILE = "intermediates.pem"

#: Oldest accepted CRL without nextUpdate, seconds (S2S_AUTH["CRL_MAX_AGE"]).
DEFAULT_CRL_MAX_AGE = 7 * 24 * 3600

_PEM_CRL_RE = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


@dataclass(frozen=True)
class VerifiedPeer:
    spiffe_id: str
    service_name: str
    fingerprint: str  # sha256 hex of the leaf's DER
    serial: int
    not_after: dt.datetime
    leaf: x509.Certificate = field(repr=False)
    #: The validated path: leaf, intermediate(s), trust anchor.
    chain: list[x509.Certificate] = field(default_factory=list, repr=False, compare=False)

    @functools.cached_property
    def leaf_pem(self) -> str:
        """The leaf as PEM text (audit evidence), encoded once per verified peer: a
        keep-alive connection's peer is the same object on every request (verify_pem)."""
        return self.leaf.public_bytes(Encoding.PEM).decode()


T = TypeVar("T")


class _CachedFile(Generic[T]):
    """A file parsed once, re-parsed when its (inode, size, mtime) changes."""

    def __init__(self, path: Path, parse: Callable[[bytes], T]):
        self.path = Path(path)
        self._parse = parse
        self._lock = threading.Lock()
        self._state: tuple[tuple[int, int, int], T] | None = None

    @staticmethod
    def _key(st: os.stat_result) -> tuple[int, int, int]:
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def get(self) -> T:
        """The parsed content; FileNotFoundError if missing, parser errors propagate."""
        key = self._key(os.stat(self.path))
        state = self._state
        if state is not None and state[0] == key:
            return state[1]
        with self._lock:
            state = self._state
            if state is not None and state[0] == key:
                return state[1]
            with open(self.path, "rb") as fh:  # key from the bytes actually read
                key = self._key(os.fstat(fh.fileno()))
                data = fh.read()
            value = self._parse(data)
            self._state = (key, value)
            return value


@dataclass
class _Anchors:
    certs: list[x509.Certificate]  # self-signed: the trust anchors
    store: Store
    helpers: list[x509.Certificate]  # other certificates of the bundle: intermediates


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _parse_anchors(data: bytes) -> _Anchors:
    """Self-signed certificates of the bundle are anchors; any others are only helpers
    for path building (untrusted intermediates), never anchors themselves."""
    certs = x509.load_pem_x509_certificates(data)
    roots = [c for c in certs if _self_signed(c)]
    if not roots:
        raise ValueError("no self-signed (root) certificate in the trust anchor bundle")
    return _Anchors(certs=roots, store=Store(roots), helpers=[c for c in certs if c not in roots])


def _parse_intermediates(data: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(data)


class _CRLSet:
    """The CRLs of a file (one per issuer), with memoised signature checks."""

    def __init__(self, crls: list[x509.CertificateRevocationList]):
        self.crls = crls
        self._checked: dict[tuple[int, str], bool] = {}
        self._lock = threading.Lock()

    def for_issuer(self, issuer: x509.Certificate) -> tuple[list, list]:
        """(CRLs of this issuer whose signature verifies, those whose signature doesn't)."""
        good, bad = [], []
        issuer_fp = fingerprint(issuer)
        issuer_ski = _key_id(issuer, x509.SubjectKeyIdentifier)
        for i, crl in enumerate(self.crls):
            if crl.issuer != issuer.subject:
                continue
            crl_aki = _key_id(crl, x509.AuthorityKeyIdentifier)
            if crl_aki and issuer_ski and crl_aki != issuer_ski:
                continue  # same name, another key: some other CA's CRL
            ok = self._checked.get((i, issuer_fp))
            if ok is None:
                try:
                    ok = crl.is_signature_valid(issuer.public_key())
                except (TypeError, ValueError):
                    ok = False
                with self._lock:
                    self._checked[(i, issuer_fp)] = ok
            (good if ok else bad).append(crl)
        return good, bad


def _key_id(obj, ext_class) -> bytes | None:
    """SKI digest / AKI key identifier of a certificate or CRL, if present."""
    try:
        value = obj.extensions.get_extension_for_class(ext_class).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    return value.digest if ext_class is x509.SubjectKeyIdentifier else value.key_identifier


def _parse_crls(data: bytes) -> _CRLSet:
    blocks = _PEM_CRL_RE.findall(data)
    if not blocks:  # a DER CRL
        return _CRLSet([x509.load_der_x509_crl(data)])
    return _CRLSet([x509.load_pem_x509_crl(b) for b in blocks])


class PeerVerifier:
    """Verifies client certificate chains against anchors, a CRL and a trust domain."""

    def __init__(
        self,
        anchors_path: Path | str,
        crl_path: Path | str,
        trust_domain: str,
        *,
        require_crl: bool = True,
        intermediates_path: Path | str | None = None,
        crl_max_age: float = DEFAULT_CRL_MAX_AGE,
        crl_fetcher: CRLFetcher | None = None,
        crl_refresher: Callable[[], None] | None = None,
    ):
        """``crl_fetcher``: fetch each CA's CRL (the CRL file is not read);
        ``crl_refresher``: called before the CRL file is read (the CA host re-signs it
        when due)."""
        self.anchors_path = Path(anchors_path)
        self.crl_path = Path(crl_path)
        self.trust_domain = trust_domain
        self.require_crl = require_crl
        if crl_max_age <= 0:
            raise ValueError("crl_max_age must be a positive number of seconds")
        self.crl_max_age = dt.timedelta(seconds=crl_max_age)
        self._anchors = _CachedFile(self.anchors_path, _parse_anchors)
        self._crls = _CachedFile(self.crl_path, _parse_crls)
        self.intermediates_path = Path(intermediates_path) if intermediates_path else None
        self._helpers = (
            _CachedFile(self.intermediates_path, _parse_intermediates)
            if self.intermediates_path
            else None
        )
        self.crl_fetcher = crl_fetcher
        self.crl_refresher = crl_refresher
        # The files stat'ed on every request, as strings once (a Path is converted on
        # each os.stat), like the cached files above: the paths of construction time.
        self._watched = tuple(
            os.fspath(path) if path else None
            for path in (self.anchors_path, self.crl_path, self.intermediates_path)
        )
        self._recent: dict[tuple, tuple[float, VerifiedPeer]] = {}
        self._recent_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"PeerVerifier(anchors={str(self.anchors_path)!r}, crl={str(self.crl_path)!r}, "
            f"trust_domain={self.trust_domain!r}, require_crl={self.require_crl})"
        )

    # -- the check, remembered ---------------------------------------------------------
    RECENT_SECONDS = 30.0
    RECENT_MAX = 4096

    def verify_pem(self, pem: str | bytes) -> VerifiedPeer:
        """:meth:`verify` for a PEM chain, reusing a recent success.

        A keep-alive connection presents the same chain on every request: path
        validation and the CRL lookup are redone only when the anchors, intermediates or
        CRL file changed (a revocation takes effect on the next request), after
        ``RECENT_SECONDS``, or when the certificate expired. Refusals are never reused.
        """
        # Keyed by the chain itself: the dict compares it whole (a digest of it cost
        # more than the rest of a remembered check); the entries are bounded below.
        chain = pem if isinstance(pem, str) else bytes(pem)
        key = (chain, self._files_state())
        now = time.monotonic()
        hit = self._recent.get(key)
        if hit is not None and hit[0] > now and hit[1].not_after > dt.datetime.now(dt.UTC):
            return hit[1]
        peer = self.verify(chain.encode() if isinstance(chain, str) else chain)
        with self._recent_lock:
            if len(self._recent) >= self.RECENT_MAX:
                self._recent.clear()
            self._recent[key] = (now + self.RECENT_SECONDS, peer)
        return peer

    def _files_state(self) -> tuple:
        if self.crl_refresher is not None:
            self.crl_refresher()
        state: list = [self.crl_fetcher.state()] if self.crl_fetcher is not None else []
        for path in self._watched:
            try:
                st = os.stat(path) if path else None
            except OSError:
                st = None
            state.append((st.st_ino, st.st_size, st.st_mtime_ns) if st else None)
        return tuple(state)

    # -- the check -----------------------------------------------------------------
    def verify(
        self,
        chain: bytes | str | Sequence[bytes | x509.Certificate],
        *,
        now: dt.datetime | None = None,
    ) -> VerifiedPeer:
        """Verify ``chain`` (leaf first) and return the peer's identity.

        Raises :class:`CertificateRejected` with a reason code on any failure.
        """
        certs = parse_pem_chain(chain)
        leaf, intermediates = certs[0], certs[1:]
        fp = fingerprint(leaf)
        if now is None:
            now = dt.datetime.now(dt.UTC)
        elif now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)

        def reject(code: str, detail: str) -> CertificateRejected:
            return CertificateRejected(code, detail, fingerprint=fp)

        try:  # extensions parse lazily: a duplicate one must be a refusal, not a 500
            for cert in certs:
                _ = cert.extensions
        except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
            # e.g. an x400Address in the SAN, which cryptography does not parse
            raise reject("malformed_certificate", f"Bad extensions: {exc}") from None

        # Specific reasons first: the path builder would only say "no valid path".
        if now < leaf.not_valid_before_utc:
            raise reject(
                "not_yet_valid",
                f"Certificate is not valid before {leaf.not_valid_before_utc.isoformat()}.",
            )
        if now > leaf.not_valid_after_utc:
            raise reject(
                "expired", f"Certificate expired at {leaf.not_valid_after_utc.isoformat()}."
            )
        try:
            eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            eku = []
        if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
            raise reject(
                "missing_client_auth_eku",
                "Certificate is not for client authentication (EKU clientAuth missing).",
            )

        # Path validation: cryptography's verifier (built per check: it fixes its time).
        try:
            anchors = self._anchors.get()
        except (OSError, ValueError) as exc:
            raise reject(
                "trust_anchors_unavailable",
                f"Trust anchors {self.anchors_path} unavailable: {exc}",
            ) from None
        try:
            verifier = PolicyBuilder().store(anchors.store).time(now).build_client_verifier()
            verified = verifier.verify(leaf, intermediates + anchors.helpers + self._known())
        except VerificationError as exc:
            raise reject("untrusted_chain", f"Certificate chain is not trusted: {exc}") from None
        path = list(verified.chain)

        self._check_revocation(path, now, reject)
        spiffe, name = self._identity(leaf, reject)
        return VerifiedPeer(
            spiffe_id=spiffe,
            service_name=name,
            fingerprint=fp,
            serial=leaf.serial_number,
            not_after=leaf.not_valid_after_utc,
            leaf=leaf,
            chain=path,
        )

    def prefetch_crls(self) -> bool:
        """Fetch the CRLs of the CAs known from the anchors and intermediates files now
        (CRL_URL set; else nothing to do): True once each is held. For a worker that
        starts, so that its first calls wait for no fetch and it keeps CRLs when the CA
        host goes away before they arrive."""
        if self.crl_fetcher is None:
            return True
        try:
            anchors = self._anchors.get()
        except (OSError, ValueError):
            return False
        cas = list(anchors.certs)
        for inter in anchors.helpers + self._known():
            for root in anchors.certs:
                if inter.issuer == root.subject and inter not in cas:
                    cas.append(inter)
        held = True
        for ca in cas:
            try:
                self.crl_fetcher.cache_for(None, ca).get()
            except CRLUnavailable:
                held = False
        return held

    def _known(self) -> list[x509.Certificate]:
        """Untrusted intermediates from ``intermediates_path`` (missing file: none).

        Needed when the peer's intermediate is not available, e.g. from
        ``getpeercert(True)``, which returns the leaf only (Python < 3.13).
        """
        if self._helpers is None:
            return []
        try:
            return self._helpers.get()
        except (OSError, ValueError):
            return []

    def _check_revocation(
        self,
        path: list[x509.Certificate],
        now: dt.datetime,
        reject: Callable[[str, str], CertificateRejected],
    ) -> None:
        """Each certificate of ``path`` but the anchor against its issuer's CRL."""
        if self.crl_fetcher is not None:
            self._check_fetched(path, now, reject)
            return
        if self.crl_refresher is not None:
            self.crl_refresher()
        try:
            crl_set = self._crls.get()
        except FileNotFoundError:
            if self.require_crl:
                raise reject(
                    "crl_unavailable", f"CRL {self.crl_path} is missing (REQUIRE_CRL is on)."
                ) from None
            return
        except OSError as exc:  # unreadable: fail closed
            raise reject("crl_unavailable", f"CRL {self.crl_path} unreadable: {exc}") from None
        except ValueError as exc:  # corrupt: fail closed even without REQUIRE_CRL
            raise reject("crl_invalid", f"CRL {self.crl_path} cannot be parsed: {exc}") from None
        for position, (cert, issuer) in enumerate(itertools.pairwise(path)):
            what = "Certificate" if position == 0 else f"Its CA {cert.subject.rfc4514_string()}"
            self._check_one(crl_set, cert, issuer, what, now, reject)

    def _check_fetched(self, path, now: dt.datetime, reject) -> None:
        """Each certificate of ``path`` against its issuer's CRL from the CA host."""
        for position, (cert, issuer) in enumerate(itertools.pairwise(path)):
            what = "Certificate" if position == 0 else f"Its CA {cert.subject.rfc4514_string()}"
            try:
                crl = self.crl_fetcher.crl_for(cert, issuer, now)
            except CRLUnavailable as exc:
                raise reject(exc.code, exc.detail) from None
            self._check_listed([crl], cert, issuer, what, now, reject)

    def _check_one(self, crl_set, cert, issuer, what: str, now: dt.datetime, reject) -> None:
        good, bad = crl_set.for_issuer(issuer)
        issuer_name = issuer.subject.rfc4514_string()
        if not good:
            if bad:
                raise reject("crl_invalid", f"CRL for {issuer_name} has an invalid signature.")
            if self.require_crl:
                raise reject("crl_unavailable", f"No CRL from {issuer_name}, the issuer of {what}.")
            return
        self._check_listed(good, cert, issuer, what, now, reject)

    def _check_listed(self, good, cert, issuer, what: str, now: dt.datetime, reject) -> None:
        """``cert`` against the verified CRLs ``good`` of ``issuer``: current, not listed."""
        issuer_name = issuer.subject.rfc4514_string()
        for crl in good:
            next_update = crl.next_update_utc
            if next_update is not None and now > next_update:
                raise reject(
                    "crl_stale",
                    f"CRL of {issuer_name} is out of date "
                    f"(nextUpdate {next_update.isoformat()}); run `s2s_pki crl`.",
                )
            if next_update is None and now > crl.last_update_utc + self.crl_max_age:
                raise reject(
                    "crl_stale",
                    f"CRL of {issuer_name} has no nextUpdate and was issued "
                    f"{crl.last_update_utc.isoformat()}, longer ago than CRL_MAX_AGE "
                    f"({int(self.crl_max_age.total_seconds())} s).",
                )
            revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if revoked is not None:
                raise reject(
                    "revoked",
                    f"{what} (serial {cert.serial_number:#x}) was revoked at "
                    f"{revoked.revocation_date_utc.isoformat()}.",
                )

    def _identity(
        self, leaf: x509.Certificate, reject: Callable[[str, str], CertificateRejected]
    ) -> tuple[str, str]:
        uris = uri_sans(leaf)
        spiffe_ids = [u for u in uris if is_spiffe_id(u)]
        if not spiffe_ids:
            raise reject("missing_spiffe_id", "Certificate has no spiffe:// URI SAN.")
        if len(spiffe_ids) > 1:
            raise reject(
                "bad_spiffe_id", f"Certificate has {len(spiffe_ids)} SPIFFE IDs; one is allowed."
            )
        if len(uris) > 1:  # X509-SVID §4: exactly one URI SAN
            raise reject(
                "bad_spiffe_id",
                f"Certificate has {len(uris)} URI SANs; an X509-SVID has exactly one.",
            )
        spiffe = spiffe_ids[0]
        try:
            domain, path = parse_spiffe_id(spiffe)
        except SpiffeIDError as exc:
            raise reject(exc.code, exc.detail) from None
        if domain != self.trust_domain:
            raise reject(
                "foreign_trust_domain",
                f"SPIFFE ID {spiffe!r} is not in trust domain {self.trust_domain!r}.",
            )
        name = name_from_path(path)
        if name is None:
            raise reject(
                "bad_spiffe_id", f"SPIFFE ID {spiffe!r} matches no SPIFFE_ID_PATHS template."
            )
        return spiffe, name


@functools.lru_cache(maxsize=8)
def _cached_verifier(
    anchors_path: Path,
    crl_path: Path,
    trust_domain: str,
    require_crl: bool,
    crl_max_age: float,
    revocation: tuple | None = None,
) -> PeerVerifier:
    fetcher = refresher = None
    if revocation is not None and revocation[0] == "fetch":
        _, url, origins, refresh, min_refetch, timeout = revocation
        fetcher = CRLFetcher(
            url,
            allowed_origins=origins,
            refresh_seconds=refresh,
            min_refetch_seconds=min_refetch,
            verify=str(anchors_path) if anchors_path.exists() else True,
            timeout=timeout,
        )
    elif revocation is not None:  # the CA host: its own crl.pem, re-signed when due
        _, pki_dir, url, validity = revocation
        refresher = LocalCRLRefresher(
            CertificateAuthority(
                pki_dir, trust_domain, crl_url=url, crl_validity=dt.timedelta(seconds=validity)
            )
        )
    return PeerVerifier(
        anchors_path,
        crl_path,
        trust_domain,
        require_crl=require_crl,
        intermediates_path=anchors_path.with_name(INTERMEDIATES_FILE),
        crl_max_age=crl_max_age,
        crl_fetcher=fetcher,
        crl_refresher=refresher,
    )


def _revocation_source(conf) -> tuple | None:
    """None: the CRL file only; ("local", ...): the CA host; ("fetch", ...): the rest."""
    url = conf.CRL_URL
    if not url:
        return None
    if is_local_ca_host(conf.pki_dir, conf.TRUST_DOMAIN):
        return ("local", conf.pki_dir, url, conf.crl_validity.total_seconds())
    origins = conf.CRL_ALLOWED_ORIGINS
    if isinstance(origins, str):
        origins = [o.strip() for o in origins.split(",") if o.strip()]
    return (
        "fetch",
        url,
        tuple(origins or ()),
        float(conf.CRL_REFRESH_SECONDS),
        float(conf.CRL_MIN_REFETCH_SECONDS),
        tuple(conf.CLIENT_TIMEOUT),
    )


#: How long :func:`peer_verifier` answers from its last lookup, seconds. Choosing the
#: verifier asks the file system whether this process is the CA host (a CA object and
#: a stat of six files, ~0.1 ms), and every request with a client certificate asks for
#: it; a CA initialized after the start is seen this much later (the CRL file itself
#: is still checked on every request, see PeerVerifier.verify_pem).
VERIFIER_RECHECK_SECONDS = 5.0
#: ``(settings object, monotonic time, verifier)`` of the last lookup.
_last_verifier: tuple | None = None


def peer_verifier() -> PeerVerifier:
    """The :class:`PeerVerifier` of the current ``S2S_AUTH`` settings (cached)."""
    global _last_verifier
    conf = s2s_settings()
    now = time.monotonic()
    last = _last_verifier
    if last is not None and last[0] is conf and 0 <= now - last[1] < VERIFIER_RECHECK_SECONDS:
        return last[2]
    verifier = _cached_verifier(
        conf.trust_anchors_path,
        conf.crl_path,
        conf.TRUST_DOMAIN,
        bool(conf.REQUIRE_CRL),
        float(conf.CRL_MAX_AGE),
        _revocation_source(conf),
    )
    _last_verifier = (conf, now, verifier)
    return verifier


def warm_up_crls(*, attempts: int = 8, first_delay: float = 0.5) -> threading.Thread | None:
    """Fetch the CRLs of the known CAs in a background thread, retrying with backoff
    (0.5 s, 1 s, 2 s, ... ``attempts`` times); None when they are not fetched here
    (no CRL_URL, or this process is the CA host)."""
    verifier = peer_verifier()
    if verifier.crl_fetcher is None:
        return None

    def run() -> None:
        delay = first_delay
        for attempt in range(attempts):
            if verifier.prefetch_crls():
                return
            if attempt + 1 < attempts:
                time.sleep(delay)
                delay = min(delay * 2, 30.0)

    thread = threading.Thread(target=run, name="s2s-crl-warm-up", daemon=True)
    thread.start()
    return thread


def _reload(*, setting, **kwargs):
    global _last_verifier
    if setting in ("S2S_AUTH", "BASE_DIR"):
        _cached_verifier.cache_clear()
        _last_verifier = None


setting_changed.connect(_reload)
