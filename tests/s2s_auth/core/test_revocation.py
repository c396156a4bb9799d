"""CRLs fetched from the CA host over real TLS on loopback, cached like the JWKS.

The server here plays the identity service's ``/pki/crl/<key id>.crl``: it serves what
the test puts there, and its certificate is issued by the test's CA (the fetch pins it).
Time is injected (a fake monotonic clock, an explicit ``now``): nothing sleeps.
"""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from s2s_auth.core import issuance
from s2s_auth.core.ca import CertificateAuthority
from s2s_auth.core.certs import PeerVerifier
from s2s_auth.core.issuance import crl_url_for
from s2s_auth.core.revocation import (
    CRLCache,
    CRLFetcher,
    CRLUnavailable,
    distribution_point_urls,
    origin,
)
from s2s_auth.core.x509 import CertificateRejected

NOW = dt.datetime.now(dt.UTC)
MINUTE = dt.timedelta(minutes=1)


class CRLServer:
    """HTTPS on loopback: ``documents[path]`` served as DER, ``hits[path]`` counted."""

    def __init__(self, cert_path, key_path):
        self.documents: dict[str, bytes] = {}
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with server._lock:
                    server.hits[self.path] = server.hits.get(self.path, 0) + 1
                    body = server.documents.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert_path), str(key_path))
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.origin = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.base = self.origin + "/pki/crl"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.running = True

    def put(self, url: str, crl: x509.CertificateRevocationList) -> None:
        self.documents[url.removeprefix(self.origin)] = crl.public_bytes(serialization.Encoding.DER)

    def stop(self):
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.running = False


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def pki(tmp_path):
    ca = CertificateAuthority(tmp_path / "pki", "fleamarket.local")
    ca.init()
    ca.issue("users")
    return ca


@pytest.fixture
def server(pki):
    cert, key = pki.paths("users")
    server = CRLServer(cert, key)
    yield server
    server.stop()


def signed_crl(pki, *, issuer="intermediate", revoked=(), number=1, key=None, **window):
    """A CRL of the CA's intermediate (or root), signed by its key (or ``key``)."""
    inter_cert, inter_key = pki.load_intermediate()
    if issuer == "intermediate":
        cert, own_key = inter_cert, inter_key
    else:
        cert = pki.root_certificate()
        own_key = serialization.load_pem_private_key(pki.root_key_path.read_bytes(), None)
    return issuance.build_crl(
        cert,
        key or own_key,
        number=number,
        revoked=[(serial, NOW - MINUTE) for serial in revoked],
        last_update=window.get("last_update", NOW - MINUTE),
        next_update=window.get("next_update", NOW + 5 * MINUTE),
    )


def cache_for(pki, server, clock, **options) -> CRLCache:
    inter = pki.intermediate_certificate()
    url = crl_url_for(server.base, inter)
    return CRLCache(
        url,
        inter,
        refresh_seconds=30,
        min_refetch_seconds=5,
        verify=str(pki.ca_path),
        clock=clock,
        **options,
    )


# -- publication side: the distribution point ---------------------------------------


def test_issued_certificates_name_the_crl_of_their_issuer(tmp_path):
    base = "https://users.example:8001/pki/crl"
    ca = CertificateAuthority(tmp_path / "pki", "fleamarket.local", crl_url=base)
    ca.init()
    leaf = ca.load_certificate(ca.issue("ads").name)
    inter = ca.intermediate_certificate()
    assert distribution_point_urls(leaf) == [crl_url_for(base, inter)]
    key_id = inter.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert crl_url_for(base, inter) == f"{base}/{key_id.hex()}.crl"
    # The intermediate names the root's CRL.
    assert distribution_point_urls(inter) == [crl_url_for(base, ca.root_certificate())]


def test_no_distribution_point_without_a_crl_url(pki):
    assert distribution_point_urls(pki.load_certificate("users")) == []


def test_the_ca_re_signs_only_when_half_the_validity_is_gone(tmp_path):
    ca = CertificateAuthority(tmp_path / "pki", "fleamarket.local", crl_validity=10 * MINUTE)
    ca.init()
    first = [c.next_update_utc for c in ca.crls()]
    assert all(n - dt.datetime.now(dt.UTC) <= 10 * MINUTE for n in first)
    assert ca.refresh_crl() is False  # fresh: nothing written
    assert ca.refresh_crl(now=dt.datetime.now(dt.UTC) + 6 * MINUTE) is True
    assert ca.crls()[0].extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2


# -- the cache -------------------------------------------------------------------------


def test_fetched_verified_and_refreshed_after_the_interval(pki, server):
    clock = Clock()
    cache = cache_for(pki, server, clock)
    server.put(cache.url, signed_crl(pki, number=1))
    assert cache.get().get_revoked_certificate_by_serial_number(7) is None
    server.put(cache.url, signed_crl(pki, revoked=[7], number=2))
    clock.t += 29
    assert cache.get().get_revoked_certificate_by_serial_number(7) is None  # still fresh
    assert cache.fetch_count == 1
    clock.t += 2
    assert cache.get().get_revoked_certificate_by_serial_number(7) is not None
    assert cache.fetch_count == 2


def test_stale_while_unreachable_until_next_update_then_fail_closed(pki, server):
    clock = Clock()
    cache = cache_for(pki, server, clock)
    next_update = NOW + 2 * MINUTE
    server.put(cache.url, signed_crl(pki, next_update=next_update))
    held = cache.get(NOW)
    server.stop()  # the CA host goes away
    clock.t += 600
    assert cache.get(next_update - dt.timedelta(seconds=1)) is held  # served stale
    assert cache.last_error  # it did try
    clock.t += 600
    with pytest.raises(CRLUnavailable) as caught:
        cache.get(next_update + dt.timedelta(seconds=1))
    assert caught.value.code == "crl_unavailable"
    assert "expired" in caught.value.detail


def test_nothing_ever_fetched_is_unavailable_and_attempts_are_rate_limited(pki, server):
    clock = Clock()
    cache = cache_for(pki, server, clock)  # the server has no document: 404
    for _ in range(3):
        with pytest.raises(CRLUnavailable):
            cache.get()
    assert cache.fetch_count == 1  # min_refetch_seconds holds the others back
    assert "HTTP 404" in cache.last_error


def test_a_crl_with_a_bad_signature_is_refused_and_the_previous_kept(pki, server):
    clock = Clock()
    cache = cache_for(pki, server, clock)
    server.put(cache.url, signed_crl(pki, number=1))
    good = cache.get()
    forged = signed_crl(pki, number=2, key=issuance.new_key())  # same name, another key
    server.put(cache.url, forged)
    clock.t += 60
    assert cache.get() is good
    assert "signature" in cache.last_error


def test_a_forged_crl_alone_is_never_accepted(pki, server):
    cache = cache_for(pki, server, Clock())
    server.put(cache.url, signed_crl(pki, key=issuance.new_key()))
    with pytest.raises(CRLUnavailable):
        cache.get()


def test_the_crl_of_another_ca_is_refused(pki, server):
    cache = cache_for(pki, server, Clock())
    server.put(cache.url, signed_crl(pki, issuer="root"))  # valid, but the root's
    with pytest.raises(CRLUnavailable):
        cache.get()
    assert "issuer" in cache.last_error


def test_an_older_crl_replayed_does_not_replace_a_newer_one(pki, server):
    clock = Clock()
    cache = cache_for(pki, server, clock)
    server.put(cache.url, signed_crl(pki, revoked=[7], number=5))
    cache.get()
    server.put(cache.url, signed_crl(pki, number=4))  # from before the revocation
    clock.t += 60
    assert cache.get().get_revoked_certificate_by_serial_number(7) is not None
    assert "older" in cache.last_error


def test_the_fetch_pins_our_trust_anchors(pki, tmp_path):
    rogue = CertificateAuthority(tmp_path / "rogue", "fleamarket.local")
    rogue.init()
    rogue.issue("users")
    server = CRLServer(*rogue.paths("users"))  # a CA host with a certificate of another CA
    try:
        cache = cache_for(pki, server, Clock())
        server.put(cache.url, signed_crl(pki))
        with pytest.raises(CRLUnavailable):
            cache.get()
        assert cache.last_error == "TLS failed"
        assert server.hits == {}  # no request got through the handshake
    finally:
        server.stop()


# -- the verifier ----------------------------------------------------------------------


def publish(pki, server, *, leaves=(), intermediate_revoked=False):
    inter, root = pki.intermediate_certificate(), pki.root_certificate()
    server.put(crl_url_for(server.base, inter), signed_crl(pki, revoked=leaves))
    server.put(
        crl_url_for(server.base, root),
        signed_crl(
            pki, issuer="root", revoked=[inter.serial_number] if intermediate_revoked else []
        ),
    )


def verifier(pki, server, **fetcher_options) -> PeerVerifier:
    fetcher = CRLFetcher(
        server.base,
        refresh_seconds=fetcher_options.pop("refresh_seconds", 0),
        min_refetch_seconds=0,
        verify=str(pki.ca_path),
        **fetcher_options,
    )
    return PeerVerifier(
        pki.ca_path,
        pki.directory / "no-such-crl.pem",
        pki.trust_domain,
        crl_fetcher=fetcher,
        intermediates_path=pki.intermediates_bundle_path,
    )


def test_every_ca_of_the_path_is_checked_with_fetched_crls(pki, server):
    leaf = pki.issue("ads")
    chain = leaf.cert_path.read_bytes()
    check = verifier(pki, server)
    publish(pki, server)
    assert check.verify_pem(chain).service_name == "ads"
    publish(pki, server, leaves=[leaf.serial])
    with pytest.raises(CertificateRejected) as caught:
        check.verify_pem(chain)
    assert caught.value.code == "revoked"
    other = pki.issue("worker")
    assert check.verify_pem(other.cert_path.read_bytes()).service_name == "worker"
    publish(pki, server, leaves=[leaf.serial], intermediate_revoked=True)
    with pytest.raises(CertificateRejected) as caught:
        check.verify_pem(other.cert_path.read_bytes())
    assert caught.value.code == "revoked"
    assert "Its CA" in caught.value.detail


def test_no_crl_from_the_ca_host_refuses_with_crl_unavailable(pki, server):
    leaf = pki.issue("ads")
    with pytest.raises(CertificateRejected) as caught:
        verifier(pki, server).verify_pem(leaf.cert_path.read_bytes())
    assert caught.value.code == "crl_unavailable"


def test_a_distribution_point_outside_the_allowed_origins_is_never_fetched(pki, server, tmp_path):
    elsewhere = CRLServer(*pki.paths("users"))  # an internal address an attacker would like hit
    try:
        ca = CertificateAuthority(pki.directory, pki.trust_domain, crl_url=elsewhere.base)
        leaf = ca.issue("ads")
        assert distribution_point_urls(ca.load_certificate("ads"))[0].startswith(elsewhere.origin)
        publish(pki, server)
        check = verifier(pki, server)
        assert check.verify_pem(leaf.cert_path.read_bytes()).service_name == "ads"
        assert elsewhere.hits == {}
        # Allowed explicitly, the same distribution point is where the CRL is read.
        publish(pki, elsewhere, leaves=[leaf.serial])
        allowing = verifier(pki, server, allowed_origins=[server.origin, elsewhere.origin])
        with pytest.raises(CertificateRejected) as caught:
            allowing.verify_pem(leaf.cert_path.read_bytes())
        assert caught.value.code == "revoked"
        assert sum(elsewhere.hits.values()) == 1
    finally:
        elsewhere.stop()


def test_an_untrusted_certificate_is_refused_before_any_fetch(pki, server, tmp_path):
    rogue = CertificateAuthority(tmp_path / "rogue", "fleamarket.local", crl_url=server.base)
    rogue.init()
    leaf = rogue.issue("ads")
    with pytest.raises(CertificateRejected) as caught:
        verifier(pki, server).verify_pem(leaf.cert_path.read_bytes())
    assert caught.value.code == "untrusted_chain"
    assert server.hits == {}


def test_origin_normalises_default_ports_and_case():
    assert origin("HTTPS://Users.Example:443/pki/crl/x.crl") == "https://users.example"
    assert origin("https://127.0.0.1:8001/x") == "https://127.0.0.1:8001"
    assert origin("https://[::1]:8001/x") == "https://[::1]:8001"


def test_prefetch_holds_the_crls_of_the_known_cas_before_any_call(pki, server):
    check = verifier(pki, server)
    assert check.prefetch_crls() is False  # nothing published yet
    publish(pki, server)
    check = verifier(pki, server)
    assert check.prefetch_crls() is True
    inter, root = pki.intermediate_certificate(), pki.root_certificate()
    for ca in (inter, root):
        assert server.hits[crl_url_for(server.base, ca).removeprefix(server.origin)] >= 1
    server.stop()  # the CA host goes away before the first call arrives
    leaf = pki.issue("ads")
    assert check.verify_pem(leaf.cert_path.read_bytes()).service_name == "ads"


def test_nothing_to_warm_up_without_a_fetcher(pki):
    plain = PeerVerifier(pki.ca_path, pki.crl_path, pki.trust_domain)
    assert plain.prefetch_crls() is True
