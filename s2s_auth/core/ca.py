"""A small file-based private CA for service identities (``cryptography`` only).

Layout of ``directory``::

    ca.pem              root certificate: the trust anchor to distribute
    intermediates.pem   the intermediate (public): lets a verifier build the path
                        for a peer that presents its leaf alone
    crl.pem             two CRLs: the intermediate's (revoked service certificates)
                        and the root's (a revoked intermediate), each signed by its CA
    NAME.pem            a service's chain to present: leaf + intermediate
    NAME.key            the service's private key (PKCS#8 PEM, mode 0600)
    ca/                 private material (mode 0700)
        root.key        root private key (0600)
        intermediate.key
        intermediate.pem
        index.json      registry of issued certificates (serial, name, validity,
                        fingerprint, revoked_at, SANs; an entry expired for more
                        than EXPIRED_ENTRY_RETENTION is dropped), revoked intermediates
                        (``revoked_cas``) and the CRL number

Each service certificate carries the SPIFFE ID ``spiffe://<trust-domain>/service/<name>``
as URI SAN, DNS and IP SANs, and EKU clientAuth + serverAuth, so the same certificate
serves for TLS servers and clients. Every file is written atomically (temp file in the
same directory + ``os.replace``, :mod:`s2s_auth.core.files`); private keys are created
with mode 0600 from the start. The certificates and CRLs themselves are built by
:mod:`s2s_auth.core.issuance`.

Given ``crl_url`` (the base URL where the identity service publishes the CRLs,
:mod:`s2s_auth.issuer.crl`), every certificate issued carries a CRL Distribution Points
extension naming its issuer's CRL there. CRLs are signed for ``crl_validity``
(nextUpdate - thisUpdate); :meth:`CertificateAuthority.refresh_crl` re-signs them when
less than half of that is left, so a CA host that calls it on every read never lets
them go stale.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from s2s_auth.core import issuance
from s2s_auth.core.files import PRIVATE_DIR, PRIVATE_FILE, PUBLIC_FILE, write_atomic, write_pair
from s2s_auth.core.x509 import fingerprint
from s2s_auth.identity import SERVICE_NAME_RE, spiffe_id

try:  # advisory cross-process lock for index updates (POSIX only)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = [
    "NAME_RE",
    "CertificateAuthority",
    "InvalidName",
    "IssuedCertificate",
    "PKIError",
    "validate_name",
]

#: A service name (:data:`s2s_auth.identity.SERVICE_NAME_RE`); match with ``fullmatch``.
NAME_RE = SERVICE_NAME_RE
#: Names whose files would collide with the CA's own files in the PKI directory.
RESERVED_NAMES = frozenset({"ca", "crl"})

_BACKDATE = dt.timedelta(minutes=1)
#: nextUpdate - thisUpdate of the CRLs signed, unless the CA is given another.
DEFAULT_CRL_VALIDITY = dt.timedelta(days=7)


class PKIError(Exception):
    """A user-facing PKI error (bad name, CA missing or present, nothing to revoke...)."""


class InvalidName(PKIError, ValueError):
    """An invalid service name (both a PKIError and a ValueError)."""


@dataclass(frozen=True)
class IssuedCertificate:
    name: str
    spiffe_id: str
    serial: int
    fingerprint: str  # sha256 hex of the leaf's DER
    not_after: dt.datetime
    cert_path: Path  # leaf + intermediate (PEM)
    key_path: Path  # PKCS#8 PEM, 0600


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid service name, else raise :class:`InvalidName`
    (a :class:`PKIError` and a :class:`ValueError`). Rules out path traversal."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidName(
            f"Invalid service name {name!r}: use 1-63 lowercase letters, digits and "
            "hyphens (not at the start or end)."
        )
    if name in RESERVED_NAMES:
        raise InvalidName(f"Invalid service name {name!r}: reserved for the CA's own files.")
    return name


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _parse_iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


#: How long an expired certificate's index entry is kept (then dropped at the next
#: issuance): short-lived certificates renewed every few minutes would otherwise grow
#: the index, read on every renewal, without bound. Revoked entries leave the CRL with
#: it, well after the certificate expired and a CRL past its expiry was published
#: (RFC 5280, 5.1.2.6); every issuance is in the audit log regardless.
EXPIRED_ENTRY_RETENTION = dt.timedelta(days=1)


def prune_expired(entries: list[dict], now: dt.datetime, retention: dt.timedelta) -> list[dict]:
    """The index entries of certificates that did not expire more than ``retention``
    before ``now``."""
    horizon = now - retention
    return [e for e in entries if _parse_iso(e["not_after"]) >= horizon]


class CertificateAuthority:
    """A root + intermediate CA kept in ``directory`` for ``trust_domain``."""

    def __init__(
        self,
        directory: Path | str,
        trust_domain: str,
        *,
        crl_url: str | None = None,
        crl_validity: dt.timedelta = DEFAULT_CRL_VALIDITY,
    ):
        if not trust_domain or "/" in trust_domain or ":" in trust_domain:
            raise PKIError(f"Invalid trust domain {trust_domain!r}")
        if crl_validity <= dt.timedelta(0):
            raise PKIError("CRL validity must be positive")
        self.directory = Path(directory)
        self.trust_domain = trust_domain
        #: Base URL of the published CRLs (None: certificates name no distribution point).
        self.crl_url = crl_url or None
        self.crl_validity = crl_validity
        self._lock = threading.RLock()

    @property
    def expired_entry_retention(self) -> dt.timedelta:
        """How long past its expiry a certificate stays in the index (and, revoked, in
        the CRLs): :data:`EXPIRED_ENTRY_RETENTION`, at least two CRL validities."""
        return max(EXPIRED_ENTRY_RETENTION, 2 * self.crl_validity)

    # -- paths ---------------------------------------------------------------------
    @property
    def private_dir(self) -> Path:
        return self.directory / "ca"

    @property
    def ca_path(self) -> Path:
        """The root certificate: the trust anchor."""
        return self.directory / "ca.pem"

    @property
    def intermediates_bundle_path(self) -> Path:
        """Public copy of the intermediate, next to ca.pem (see s2s_auth.core.certs)."""
        return self.directory / "intermediates.pem"

    @property
    def crl_path(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def root_key_path(self) -> Path:
        return self.private_dir / "root.key"

    @property
    def intermediate_key_path(self) -> Path:
        return self.private_dir / "intermediate.key"

    @property
    def intermediate_path(self) -> Path:
        return self.private_dir / "intermediate.pem"

    @property
    def index_path(self) -> Path:
        return self.private_dir / "index.json"

    def paths(self, name: str) -> tuple[Path, Path]:
        """``(cert_path, key_path)`` of service ``name``: ``NAME.pem`` and ``NAME.key``."""
        validate_name(name)
        return self.directory / f"{name}.pem", self.directory / f"{name}.key"

    def spiffe_id(self, name: str) -> str:
        return spiffe_id(validate_name(name), self.trust_domain)

    @property
    def initialized(self) -> bool:
        return all(
            p.exists()
            for p in (
                self.ca_path,
                self.root_key_path,
                self.intermediate_key_path,
                self.intermediate_path,
                self.index_path,
            )
        )

    # -- loading -------------------------------------------------------------------
    def _require_initialized(self) -> None:
        if not self.initialized:
            raise PKIError(f"No CA in {self.directory}: run `python manage.py s2s_pki init` first.")

    def root_certificate(self) -> x509.Certificate:
        self._require_initialized()
        return x509.load_pem_x509_certificate(self.ca_path.read_bytes())

    def intermediate_certificate(self) -> x509.Certificate:
        self._require_initialized()
        return x509.load_pem_x509_certificate(self.intermediate_path.read_bytes())

    def load_intermediate(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """The issuing CA: its certificate and private key (e.g. to sign special leaves)."""
        cert = self.intermediate_certificate()
        key = serialization.load_pem_private_key(
            self.intermediate_key_path.read_bytes(), password=None
        )
        return cert, key

    def load_key(self, name: str) -> ec.EllipticCurvePrivateKey:
        """The private key of service ``name``."""
        _, key_path = self.paths(name)
        try:
            data = key_path.read_bytes()
        except FileNotFoundError:
            raise PKIError(f"No key for {name!r} in {self.directory}") from None
        return serialization.load_pem_private_key(data, password=None)

    def load_certificate(self, name: str) -> x509.Certificate:
        """The current leaf certificate of service ``name``."""
        return self.load_chain(name)[0]

    def load_chain(self, name: str) -> list[x509.Certificate]:
        """The current chain (leaf, intermediate) of service ``name``."""
        cert_path, _ = self.paths(name)
        try:
            data = cert_path.read_bytes()
        except FileNotFoundError:
            raise PKIError(f"No certificate for {name!r} in {self.directory}") from None
        return x509.load_pem_x509_certificates(data)

    # -- index ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialize mutations (threads and, on POSIX, processes)."""
        with self._lock:
            self._ensure_private_dir()
            if fcntl is None:  # pragma: no cover
                yield
                return
            fd = os.open(self.private_dir / ".lock", os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    def _ensure_private_dir(self) -> None:
        self.directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        self.private_dir.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        if self.private_dir.stat().st_mode & 0o077:  # existed with a looser mode
            os.chmod(self.private_dir, PRIVATE_DIR)

    def _read_index(self) -> dict:
        try:
            return json.loads(self.index_path.read_text())
        except FileNotFoundError:
            raise PKIError(
                f"No CA in {self.directory}: run `python manage.py s2s_pki init` first."
            ) from None
        except ValueError as exc:
            raise PKIError(f"Corrupt CA index {self.index_path}: {exc}") from exc

    def _write_index(self, index: dict) -> None:
        data = json.dumps(index, indent=2, sort_keys=True).encode() + b"\n"
        write_atomic(self.index_path, data, PRIVATE_FILE)

    def certificates(self) -> list[dict]:
        """The registry of issued certificates (a copy of the index entries)."""
        return [dict(e) for e in self._read_index()["certificates"]]

    # -- init ----------------------------------------------------------------------
    def init(
        self, *, force: bool = False, root_days: int = 3650, intermediate_days: int = 365
    ) -> x509.Certificate:
        """Create the root and the intermediate CA; returns the root certificate."""
        if root_days <= 0 or intermediate_days <= 0:
            raise PKIError("CA lifetimes must be positive")
        with self._locked():
            existing = [
                p
                for p in (self.ca_path, self.root_key_path, self.intermediate_key_path)
                if p.exists()
            ]
            if existing and not force:
                raise PKIError(
                    f"A CA already exists in {self.directory}; use --force to replace it "
                    "(every certificate it issued will stop being trusted)."
                )
            now = _now()
            not_before = now - _BACKDATE
            root_after = now + dt.timedelta(days=root_days)
            inter_after = min(now + dt.timedelta(days=intermediate_days), root_after)

            root_key = issuance.new_key()
            root = issuance.root_ca(self.trust_domain, root_key, not_before, root_after)
            inter_key = issuance.new_key()
            intermediate = issuance.intermediate_ca(
                self.trust_domain,
                inter_key,
                root,
                root_key,
                not_before,
                inter_after,
                crl_url=self.crl_url,
            )

            # Keys first, then the certificates, the trust anchor last: a crash
            # midway leaves no ca.pem that points at a missing key.
            write_atomic(self.root_key_path, issuance.key_pem(root_key), PRIVATE_FILE)
            write_atomic(self.intermediate_key_path, issuance.key_pem(inter_key), PRIVATE_FILE)
            write_atomic(self.intermediate_path, issuance.certs_pem(intermediate), PUBLIC_FILE)
            write_atomic(
                self.intermediates_bundle_path, issuance.certs_pem(intermediate), PUBLIC_FILE
            )
            self._write_index(
                {
                    "version": 1,
                    "trust_domain": self.trust_domain,
                    "crl_number": 0,
                    "certificates": [],
                }
            )
            write_atomic(self.ca_path, issuance.certs_pem(root), PUBLIC_FILE)
            self._write_crl_locked()
            return root

    # -- issue / renew -------------------------------------------------------------
    def issue(
        self,
        name: str,
        *,
        hours: float = 24,
        dns_names: Iterable[str] = ("localhost",),
        ip_addresses: Iterable[str] = ("127.0.0.1",),
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> IssuedCertificate:
        """Issue a new key and certificate for service ``name``; writes NAME.pem/NAME.key.

        ``not_before``/``not_after`` override the validity window (for tests of
        expired or not-yet-valid certificates); by default it is
        ``[now - 1 min, now + hours]``.
        """
        validate_name(name)
        sans, dns_names, ips = _sans(dns_names, ip_addresses)
        start, end = _window(hours, not_before, not_after)
        key = issuance.new_key()
        spiffe = self.spiffe_id(name)
        with self._locked():
            cert, inter_cert = self._sign_locked(
                name, spiffe, key.public_key(), sans, dns_names, ips, start, end
            )
            cert_path, key_path = self.paths(name)
            write_pair(
                cert_path, key_path, issuance.certs_pem(cert, inter_cert), issuance.key_pem(key)
            )
        return IssuedCertificate(
            name=name,
            spiffe_id=spiffe,
            serial=cert.serial_number,
            fingerprint=fingerprint(cert),
            not_after=cert.not_valid_after_utc,
            cert_path=cert_path,
            key_path=key_path,
        )

    def certify(
        self,
        name: str,
        public_key,
        *,
        spiffe_id: str,
        hours: float,
        dns_names: Iterable[str] = (),
        ip_addresses: Iterable[str] = (),
    ) -> list[x509.Certificate]:
        """A certificate for a key the CA never sees (a renewal's CSR): ``[leaf,
        intermediate]``, recorded in the index, no file written.

        ``spiffe_id`` is the caller's verified one (it may use another
        ``SPIFFE_ID_PATHS`` layout than :meth:`spiffe_id` builds); the caller checks
        that it names ``name`` in this trust domain.
        """
        validate_name(name)
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, ec.SECP256R1
        ):
            raise PKIError("Only P-256 keys are certified.")
        sans, dns_names, ips = _sans(dns_names, ip_addresses)
        start, end = _window(hours, None, None)
        with self._locked():
            cert, inter_cert = self._sign_locked(
                name, spiffe_id, public_key, sans, dns_names, ips, start, end
            )
        return [cert, inter_cert]

    def issued(self, serial: int) -> dict | None:
        """The index entry of the certificate with this serial, None if not ours."""
        for entry in self._read_index()["certificates"]:
            if entry["serial"] == serial:
                return dict(entry)
        return None

    def _sign_locked(self, name, spiffe, public_key, sans, dns_names, ips, start, end):
        """Sign a service certificate and record it in the index (lock held)."""
        self._require_initialized()
        inter_cert, inter_key = self.load_intermediate()
        if self._revoked_ca(self._read_index(), inter_cert.serial_number):
            raise PKIError(
                "The intermediate CA is revoked: it issues nothing more. Run "
                "`s2s_pki init --force` for a new CA."
            )
        if end > inter_cert.not_valid_after_utc:
            raise PKIError(
                f"The certificate would outlive the intermediate CA (expires "
                f"{inter_cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC); shorten the "
                "lifetime or re-initialise the CA."
            )
        cert = issuance.service_certificate(
            self.trust_domain,
            name,
            spiffe,
            public_key,
            inter_cert,
            inter_key,
            sans=sans,
            not_before=start,
            not_after=end,
            crl_url=self.crl_url,
        )
        index = self._read_index()
        index["certificates"] = prune_expired(
            index["certificates"], _now(), self.expired_entry_retention
        )
        index["certificates"].append(
            {
                "serial": cert.serial_number,
                "name": name,
                "not_before": _iso(cert.not_valid_before_utc),
                "not_after": _iso(cert.not_valid_after_utc),
                "fingerprint": fingerprint(cert),
                "revoked_at": None,
                "dns_names": dns_names,
                "ip_addresses": [str(ip) for ip in ips],
            }
        )
        self._write_index(index)
        return cert, inter_cert

    def renew(
        self,
        name: str,
        *,
        hours: float = 24,
        dns_names: Iterable[str] | None = None,
        ip_addresses: Iterable[str] | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> IssuedCertificate:
        """A fresh key and certificate for an already issued ``name``.

        The previous certificate is not revoked: it stays valid until it expires, so
        processes still presenting it keep working while they pick up the new files.
        SANs default to those of the latest certificate of ``name``.
        """
        validate_name(name)
        with self._locked():
            self._require_initialized()
            entries = [e for e in self._read_index()["certificates"] if e["name"] == name]
        if not entries:
            raise PKIError(f"{name!r} was never issued; use `issue`.")
        last = entries[-1]
        return self.issue(
            name,
            hours=hours,
            dns_names=last.get("dns_names", ["localhost"]) if dns_names is None else dns_names,
            ip_addresses=(
                last.get("ip_addresses", ["127.0.0.1"]) if ip_addresses is None else ip_addresses
            ),
            not_before=not_before,
            not_after=not_after,
        )

    # -- revocation ----------------------------------------------------------------
    def revoke(self, name_or_serial: str | int) -> list[int]:
        """Revoke every unexpired certificate of a name, or one serial; rewrites the CRL.

        A serial is given as an int, a decimal string or a ``0x``-prefixed hex string.
        Returns the serials revoked now.
        """
        with self._locked():
            self._require_initialized()
            index = self._read_index()
            entries = index["certificates"]
            now = _now()
            by_name = (
                isinstance(name_or_serial, str)
                and NAME_RE.fullmatch(name_or_serial)
                and any(e["name"] == name_or_serial for e in entries)
            )
            if by_name:
                targets = [
                    e
                    for e in entries
                    if e["name"] == name_or_serial
                    and e["revoked_at"] is None
                    and _parse_iso(e["not_after"]) > now
                ]
                if not targets:
                    raise PKIError(
                        f"{name_or_serial!r} has no unexpired, unrevoked certificate to revoke."
                    )
            else:
                serial = _parse_serial(name_or_serial)
                targets = [e for e in entries if e["serial"] == serial]
                if not targets:
                    raise PKIError(f"No certificate named or with serial {name_or_serial!r}.")
                if targets[0]["revoked_at"] is not None:
                    raise PKIError(
                        f"Serial {serial:#x} was already revoked at {targets[0]['revoked_at']}."
                    )
            stamp = _iso(now)
            for entry in targets:
                entry["revoked_at"] = stamp
            self._write_index(index)
            self._write_crl_locked()
            return [e["serial"] for e in targets]

    def revoke_intermediate(self) -> int:
        """Revoke the intermediate CA: the root's CRL lists it, so every certificate it
        issued is refused (``revoked``) by verifiers that read the new ``crl.pem``.
        Returns its serial. The CA then issues nothing more until ``init --force``."""
        with self._locked():
            self._require_initialized()
            inter_cert = self.intermediate_certificate()
            index = self._read_index()
            serial = inter_cert.serial_number
            if self._revoked_ca(index, serial):
                raise PKIError(f"The intermediate CA {serial:#x} is already revoked.")
            index.setdefault("revoked_cas", []).append(
                {
                    "serial": serial,
                    "fingerprint": fingerprint(inter_cert),
                    "revoked_at": _iso(_now()),
                }
            )
            self._write_index(index)
            self._write_crl_locked()
            return serial

    @staticmethod
    def _revoked_ca(index: dict, serial: int) -> bool:
        return any(e["serial"] == serial for e in index.get("revoked_cas", []))

    def write_crl(self, *, days: float | None = None) -> Path:
        """(Re)write ``crl.pem``: the intermediate's CRL (revoked service certificates)
        and the root's (revoked intermediates), each signed by its CA, valid for
        ``days`` (default: the CA's ``crl_validity``)."""
        if days is not None and days <= 0:
            raise PKIError("CRL validity must be positive")
        with self._locked():
            self._require_initialized()
            return self._write_crl_locked(
                validity=dt.timedelta(days=days) if days is not None else None
            )

    def refresh_crl(self, *, now: dt.datetime | None = None) -> bool:
        """Re-sign ``crl.pem`` when it is missing or unreadable, or when less than half
        of ``crl_validity`` is left before the earliest nextUpdate; True if it did.

        Cheap when nothing is due (one small file read), so a CA host may call it
        on every publication and every verification."""
        now = now or _now()
        if self._crl_fresh(now):
            return False
        with self._locked():
            self._require_initialized()
            if self._crl_fresh(now):  # another process re-signed meanwhile
                return False
            self._write_crl_locked()
            return True

    def _crl_fresh(self, now: dt.datetime) -> bool:
        try:
            crls = self.crls()
        except (OSError, ValueError):
            return False
        updates = [c.next_update_utc for c in crls]
        if not crls or None in updates:
            return False
        return min(updates) - now > self.crl_validity / 2

    def crls(self) -> list[x509.CertificateRevocationList]:
        """The CRLs of ``crl.pem`` (the intermediate's, the root's); OSError/ValueError."""
        return [x509.load_pem_x509_crl(b) for b in _pem_crls(self.crl_path.read_bytes())]

    def ca_certificates(self) -> list[x509.Certificate]:
        """The CAs whose CRLs this CA signs: the intermediate and the root."""
        return [self.intermediate_certificate(), self.root_certificate()]

    def _write_crl_locked(self, *, validity: dt.timedelta | None = None) -> Path:
        inter_cert, inter_key = self.load_intermediate()
        root_key = serialization.load_pem_private_key(
            self.root_key_path.read_bytes(), password=None
        )
        index = self._read_index()
        index["crl_number"] = int(index.get("crl_number", 0)) + 1
        now = _now()
        window = {"last_update": now, "next_update": now + (validity or self.crl_validity)}
        leaves = issuance.build_crl(
            inter_cert,
            inter_key,
            number=index["crl_number"],
            revoked=[
                (e["serial"], _parse_iso(e["revoked_at"]))
                for e in index["certificates"]
                if e["revoked_at"] is not None
            ],
            **window,
        )
        cas = issuance.build_crl(
            self.root_certificate(),
            root_key,
            number=index["crl_number"],
            revoked=[
                (e["serial"], _parse_iso(e["revoked_at"])) for e in index.get("revoked_cas", [])
            ],
            **window,
        )
        self._write_index(index)
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaves, cas))
        write_atomic(self.crl_path, pem, PUBLIC_FILE)
        return self.crl_path


def _sans(dns_names: Iterable[str], ip_addresses: Iterable[str]):
    """``(GeneralNames, dns_names, ips)``; PKIError for a name or address that is not one."""
    dns_names = [str(d) for d in dns_names]
    try:
        ips = [ipaddress.ip_address(str(ip)) for ip in ip_addresses]
    except ValueError as exc:
        raise PKIError(f"Invalid IP address: {exc}") from exc
    for dns in dns_names:
        try:
            x509.DNSName(dns)
        except ValueError as exc:
            raise PKIError(f"Invalid DNS name {dns!r}: {exc}") from exc
        if not dns or any(c.isspace() or c in "/:@" for c in dns):
            raise PKIError(f"Invalid DNS name {dns!r}")
    sans = [*map(x509.DNSName, dns_names), *map(x509.IPAddress, ips)]
    return sans, dns_names, ips


def _window(hours: float, not_before, not_after) -> tuple[dt.datetime, dt.datetime]:
    """``[now - 1 min, now + hours]`` unless overridden; PKIError for an empty window."""
    now = _now()
    start = not_before if not_before is not None else now - _BACKDATE
    if not_after is not None:
        end = not_after
    else:
        if hours <= 0:
            raise PKIError("--hours must be positive")
        end = now + dt.timedelta(hours=hours)
    if start.tzinfo is None or end.tzinfo is None:
        raise PKIError("not_before/not_after must be timezone-aware")
    if end <= start:
        raise PKIError("not_after must be later than not_before")
    return start, end


def _pem_crls(data: bytes) -> list[bytes]:
    marker = b"-----END X509 CRL-----"
    return [block + marker for block in data.split(marker)[:-1]]


def _parse_serial(value: str | int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    try:
        if text.startswith("0x"):
            return int(text[2:].replace(":", ""), 16)
        if text.isdigit():
            return int(text, 10)
    except ValueError:
        pass
    raise PKIError(f"{value!r} is neither an issued name nor a serial (decimal, or hex with 0x).")
