"""Values read at scrape time from files: this service's certificate and its CRL.

Read when Prometheus scrapes, never cached: a renewed certificate or a re-signed CRL
shows at the next scrape, whichever worker process answers it.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography import x509
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from s2s_auth.conf import s2s_settings

__all__ = ["TrustMaterialCollector", "own_certificate_path"]


def own_certificate_path() -> Path | None:
    """The certificate this service presents: ``TLS_CERT`` (as the TLS worker reads
    it), else ``PKI_DIR/<SERVICE_NAME>.pem``; None when neither is known."""
    if os.environ.get("TLS_CERT"):
        return Path(os.environ["TLS_CERT"])
    conf = s2s_settings()
    name = conf.configured("SERVICE_NAME")
    return conf.pki_dir / f"{name}.pem" if name else None


def _read(path: Path | None) -> bytes | None:
    try:
        return path.read_bytes() if path is not None else None
    except OSError:
        return None


class TrustMaterialCollector(Collector):
    """``s2s_auth_certificate_expiry_timestamp_seconds`` (the leaf of this service's
    certificate file) and ``s2s_auth_crl_next_update_timestamp_seconds`` (the earliest
    ``nextUpdate`` of the CRL file, and of the CRLs fetched from the CA host). A missing
    or unreadable file yields no sample, so ``absent()`` alerts on it."""

    def collect(self):
        expiry = GaugeMetricFamily(
            "s2s_auth_certificate_expiry_timestamp_seconds",
            "notAfter of this service's own certificate (Unix time).",
            labels=["service"],
        )
        data = _read(own_certificate_path())
        if data:
            try:
                leaf = x509.load_pem_x509_certificates(data)[0]
            except ValueError:
                leaf = None
            if leaf is not None:
                name = s2s_settings().configured("SERVICE_NAME") or ""
                expiry.add_metric([name], leaf.not_valid_after_utc.timestamp())
        yield expiry
        crl = GaugeMetricFamily(
            "s2s_auth_crl_next_update_timestamp_seconds",
            "Earliest nextUpdate of the CRLs this service checks (Unix time).",
        )
        updates = _next_updates(_read(s2s_settings().crl_path)) + _fetched_next_updates()
        if updates:
            crl.add_metric([], min(updates))
        yield crl


def _fetched_next_updates() -> list[float]:
    """nextUpdate of the CRLs this process fetched from the CA host (CRL_URL set)."""
    from s2s_auth.core.certs import peer_verifier

    try:
        fetcher = peer_verifier().crl_fetcher
    except Exception:  # a scrape never fails on a misconfiguration
        return []
    if fetcher is None:
        return []
    return [
        c.crl.next_update_utc.timestamp()
        for c in fetcher.caches()
        if c.crl is not None and c.crl.next_update_utc is not None
    ]


def _next_updates(data: bytes | None) -> list[float]:
    """nextUpdate of every PEM CRL in ``data`` (the file may hold one per CA)."""
    if not data:
        return []
    marker = b"-----END X509 CRL-----"
    found = []
    for block in data.split(marker)[:-1]:
        try:
            crl = x509.load_pem_x509_crl(block + marker)
        except ValueError:
            continue
        if crl.next_update_utc is not None:
            found.append(crl.next_update_utc.timestamp())
    return found
