"""PeerVerifier: every reason code, CRL reload, parsing, and the settings-bound cache."""

from __future__ import annotations

import datetime as dt
import os
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.test import override_settings

from s2s_auth.core.ca import CertificateAuthority, PKIError
from s2s_auth.core.certs import PeerVerifier, VerifiedPeer, peer_verifier
from s2s_auth.core.x509 import CertificateRejected, fingerprint, parse_pem_chain
from tests.s2s_auth.core.crl_support import crls_in, without_next_update

UTC = dt.UTC


def rejected(verifier: PeerVerifier, chain, **kwargs) -> CertificateRejected:
    with pytest.raises(CertificateRejected) as info:
        verifier.verify(chain, **kwargs)
    return info.value


@pytest.fixture
def verifier(ca, peer_verifier_for) -> PeerVerifier:
    return peer_verifier_for(ca)


# -- accepted --------------------------------------------------------------------------


def test_valid_chain_gives_identity(ca, verifier):
    issued = ca.issue("peer-ok")
    pem = issued.cert_path.read_bytes()
    peer = verifier.verify(pem)
    assert isinstance(peer, VerifiedPeer)
    assert peer.spiffe_id == "spiffe://fleamarket.local/service/peer-ok"
    assert peer.service_name == "peer-ok"
    assert peer.fingerprint == issued.fingerprint
    assert peer.serial == issued.serial
    assert peer.not_after == issued.not_after
    assert peer.leaf.serial_number == issued.serial
    # the validated path ends at the trust anchor
    assert [c.subject for c in peer.chain] == [
        peer.leaf.subject,
        ca.intermediate_certificate().subject,
        ca.root_certificate().subject,
    ]


def test_accepts_str_der_list_and_cert_objects(ca, verifier):
    issued = ca.issue("peer-forms")
    pem = issued.cert_path.read_bytes()
    certs = x509.load_pem_x509_certificates(pem)
    ders = [c.public_bytes(serialization.Encoding.DER) for c in certs]
    for form in (pem.decode(), ders, certs):
        assert verifier.verify(form).serial == issued.serial


def test_leaf_alone_with_intermediate_missing_is_untrusted(ca, verifier):
    leaf = ca.issue("peer-alone").cert_path.read_bytes()
    only_leaf = x509.load_pem_x509_certificates(leaf)[:1]
    assert rejected(verifier, only_leaf).code == "untrusted_chain"


def test_leaf_alone_with_known_intermediates(ca, rogue_ca, peer_verifier_for):
    """getpeercert(True) gives the leaf only: intermediates.pem completes the path."""
    assert x509.load_pem_x509_certificates(ca.intermediates_bundle_path.read_bytes()) == [
        ca.intermediate_certificate()
    ]
    v = peer_verifier_for(ca, intermediates_path=ca.intermediates_bundle_path)
    leaf = x509.load_pem_x509_certificates(ca.issue("peer-leafonly").cert_path.read_bytes())[0]
    assert v.verify([leaf]).service_name == "peer-leafonly"
    rogue_leaf = x509.load_pem_x509_certificates(
        rogue_ca.issue("peer-leafonly").cert_path.read_bytes()
    )[0]
    assert rejected(v, [rogue_leaf]).code == "untrusted_chain"


def test_intermediates_in_the_anchor_bundle_are_not_anchors(ca, tmp_path, peer_verifier_for):
    leaf = x509.load_pem_x509_certificates(ca.issue("peer-bundled").cert_path.read_bytes())[0]
    both = tmp_path / "both.pem"
    both.write_bytes(ca.ca_path.read_bytes() + ca.intermediate_path.read_bytes())
    assert peer_verifier_for(ca, anchors_path=both).verify([leaf]).service_name == ("peer-bundled")
    only_intermediate = tmp_path / "inter.pem"
    only_intermediate.write_bytes(ca.intermediate_path.read_bytes())
    v = peer_verifier_for(ca, anchors_path=only_intermediate)
    assert rejected(v, [leaf]).code == "trust_anchors_unavailable"


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext) -> ssl.SSLObject:
    """A TLS handshake over memory BIOs; returns the server side."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname="localhost")
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for side, obj in (("c", c), ("s", srv)):
            if not done[side]:
                try:
                    obj.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return srv
    raise AssertionError("handshake did not finish")


def test_peer_certificate_from_a_real_tls_handshake(ca):
    server_cert = ca.issue("peer-tls-server")
    client_cert = ca.issue("peer-tls-client")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(server_cert.cert_path, server_cert.key_path)
    server.load_verify_locations(cafile=ca.ca_path)
    server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_cert_chain(client_cert.cert_path, client_cert.key_path)
    client.load_verify_locations(cafile=ca.ca_path)
    srv = _handshake(client, server)
    der = srv.getpeercert(binary_form=True)  # the leaf only
    with override_settings(
        S2S_AUTH={"PKI_DIR": str(ca.directory), "TRUST_DOMAIN": "fleamarket.local"}
    ):
        peer = peer_verifier().verify([der])
    assert peer.service_name == "peer-tls-client"
    assert peer.fingerprint == client_cert.fingerprint


# -- validity --------------------------------------------------------------------------


def test_expired(ca, verifier, make_leaf):
    now = dt.datetime.now(UTC)
    leaf = make_leaf(
        ca,
        "peer-expired",
        not_before=now - dt.timedelta(days=2),
        not_after=now - dt.timedelta(days=1),
    )
    err = rejected(verifier, leaf.chain)
    assert err.code == "expired"
    assert err.fingerprint == fingerprint(leaf.cert)


def test_not_yet_valid(ca, verifier):
    now = dt.datetime.now(UTC)
    issued = ca.issue(
        "peer-future",
        not_before=now + dt.timedelta(hours=1),
        not_after=now + dt.timedelta(hours=2),
    )
    assert rejected(verifier, issued.cert_path.read_bytes()).code == "not_yet_valid"


def test_now_parameter_controls_the_clock(ca, verifier):
    pem = ca.issue("peer-clock", hours=1).cert_path.read_bytes()
    now = dt.datetime.now(UTC)
    assert rejected(verifier, pem, now=now + dt.timedelta(hours=2)).code == "expired"
    assert rejected(verifier, pem, now=now - dt.timedelta(hours=1)).code == "not_yet_valid"
    # a naive datetime is taken as UTC
    naive = (now + dt.timedelta(minutes=5)).replace(tzinfo=None)
    assert verifier.verify(pem, now=naive).service_name == "peer-clock"


# -- EKU and path ----------------------------------------------------------------------


def test_missing_client_auth_eku(ca, verifier, make_leaf):
    server_only = make_leaf(ca, "peer-server", eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    assert rejected(verifier, server_only.chain).code == "missing_client_auth_eku"
    no_eku = make_leaf(ca, "peer-noeku", eku=None)
    assert rejected(verifier, no_eku.chain).code == "missing_client_auth_eku"


def test_rogue_ca_is_untrusted(rogue_ca, verifier):
    pem = rogue_ca.issue("users").cert_path.read_bytes()
    err = rejected(verifier, pem)
    assert err.code == "untrusted_chain"
    assert err.fingerprint == fingerprint(x509.load_pem_x509_certificates(pem)[0])


def test_rogue_leaf_with_our_intermediate_attached_is_untrusted(ca, rogue_ca, verifier):
    rogue_leaf = x509.load_pem_x509_certificates(rogue_ca.issue("users").cert_path.read_bytes())[0]
    assert rejected(verifier, [rogue_leaf, ca.intermediate_certificate()]).code == (
        "untrusted_chain"
    )


def test_self_signed_leaf_is_untrusted(verifier, make_leaf):
    leaf = make_leaf(None, "users")
    assert leaf.cert.issuer == leaf.cert.subject
    assert rejected(verifier, leaf.chain).code == "untrusted_chain"


def test_presenting_the_ca_itself_is_refused(ca, verifier):
    code = rejected(verifier, [ca.intermediate_certificate()]).code
    assert code in {"missing_client_auth_eku", "untrusted_chain"}


# -- SPIFFE ----------------------------------------------------------------------------


def test_foreign_trust_domain(ca, verifier, make_leaf):
    leaf = make_leaf(ca, "users", uris=["spiffe://evil.example/service/users"])
    assert rejected(verifier, leaf.chain).code == "foreign_trust_domain"


def test_trust_domain_of_the_verifier_matters(ca, peer_verifier_for):
    pem = ca.issue("peer-domain").cert_path.read_bytes()
    other = peer_verifier_for(ca, trust_domain="other.local")
    assert rejected(other, pem).code == "foreign_trust_domain"


def test_no_spiffe_san(ca, verifier, make_leaf):
    leaf = make_leaf(ca, "users", uris=[])
    assert rejected(verifier, leaf.chain).code == "missing_spiffe_id"
    https_only = make_leaf(ca, "users", uris=["https://fleamarket.local/service/users"])
    assert rejected(verifier, https_only.chain).code == "missing_spiffe_id"


@pytest.mark.parametrize(
    "uri",
    [
        "spiffe://fleamarket.local/users",
        "spiffe://fleamarket.local/service/",
        "spiffe://fleamarket.local/service/users/extra",
        "spiffe://fleamarket.local",
        "spiffe://fleamarket.local/service/users?x=1",
        "spiffe://FLEAMARKET.LOCAL/service/users",
    ],
)
def test_bad_spiffe_id(ca, verifier, make_leaf, uri):
    leaf = make_leaf(ca, "users", uris=[uri])
    assert rejected(verifier, leaf.chain).code == "bad_spiffe_id"


def test_two_spiffe_ids_are_refused(ca, verifier, make_leaf):
    leaf = make_leaf(
        ca,
        "users",
        uris=[
            "spiffe://fleamarket.local/service/users",
            "spiffe://fleamarket.local/service/admin",
        ],
    )
    assert rejected(verifier, leaf.chain).code == "bad_spiffe_id"


@pytest.mark.parametrize(
    "uris",
    [
        ["https://example.org/", "spiffe://fleamarket.local/service/users"],
        ["spiffe://fleamarket.local/service/users", "https://example.org/"],
        [
            "spiffe://fleamarket.local/service/users",
            "urn:uuid:0b8f0c1e-6a53-4b1b-8d2c-0e6e0f2c8a11",
        ],
    ],
)
def test_a_second_uri_san_beside_the_spiffe_id_is_refused(ca, verifier, make_leaf, uris):
    """X509-SVID §4: exactly one URI SAN; DNS and IP SANs beside it are fine."""
    leaf = make_leaf(ca, "users", uris=uris, dns_names=["localhost", "users.internal"])
    err = rejected(verifier, leaf.chain)
    assert err.code == "bad_spiffe_id"
    assert "exactly one" in err.detail
    alone = make_leaf(ca, "users", dns_names=["localhost", "users.internal"])
    assert verifier.verify(alone.chain).service_name == "users"


# -- revocation ------------------------------------------------------------------------


def test_revocation_takes_effect_without_a_new_verifier(ca, verifier):
    issued = ca.issue("peer-revoked")
    pem = issued.cert_path.read_bytes()
    bystander = ca.issue("peer-bystander").cert_path.read_bytes()
    assert verifier.verify(pem).serial == issued.serial  # CRL now cached
    assert ca.revoke("peer-revoked") == [issued.serial]
    err = rejected(verifier, pem)
    assert err.code == "revoked"
    assert err.fingerprint == issued.fingerprint
    assert verifier.verify(bystander).service_name == "peer-bystander"


def test_crl_missing(ca, tmp_path, peer_verifier_for):
    pem = ca.issue("peer-nocrl").cert_path.read_bytes()
    strict = peer_verifier_for(ca, crl_path=tmp_path / "absent.pem")
    assert rejected(strict, pem).code == "crl_unavailable"
    lenient = peer_verifier_for(ca, crl_path=tmp_path / "absent.pem", require_crl=False)
    assert lenient.verify(pem).service_name == "peer-nocrl"


def test_crl_appearing_later_is_picked_up(ca, tmp_path, peer_verifier_for):
    pem = ca.issue("peer-latecrl").cert_path.read_bytes()
    crl_path = tmp_path / "crl.pem"
    strict = peer_verifier_for(ca, crl_path=crl_path)
    assert rejected(strict, pem).code == "crl_unavailable"
    crl_path.write_bytes(ca.crl_path.read_bytes())
    assert strict.verify(pem).service_name == "peer-latecrl"


def test_crl_stale(ca, verifier):
    pem = ca.issue("peer-stale", hours=24 * 30).cert_path.read_bytes()
    later = dt.datetime.now(UTC) + dt.timedelta(days=8)  # CRL is valid for 7 days
    assert rejected(verifier, pem, now=later).code == "crl_stale"


# -- revocation of a CA, and a CRL per CA of the path --------------------------------


@pytest.fixture
def own_ca(tmp_path):
    """A CA of this test alone (its intermediate gets revoked)."""
    authority = CertificateAuthority(tmp_path / "pki", "fleamarket.local")
    authority.init()
    return authority


def test_a_revoked_intermediate_refuses_every_leaf_under_it(own_ca, peer_verifier_for):
    v = peer_verifier_for(own_ca)
    leaves = [own_ca.issue(name).cert_path.read_bytes() for name in ("peer-a", "peer-b")]
    for pem in leaves:
        v.verify(pem)  # accepted, the CRLs now cached
    serial = own_ca.revoke_intermediate()
    assert serial == own_ca.intermediate_certificate().serial_number
    for pem in leaves:
        err = rejected(v, pem)
        assert err.code == "revoked"
        assert "Intermediate CA" in err.detail and f"{serial:#x}" in err.detail
        assert err.fingerprint == fingerprint(parse_pem_chain(pem)[0])
    # A leaf presented alone (path completed from intermediates.pem) is refused too.
    alone = peer_verifier_for(own_ca, intermediates_path=own_ca.intermediates_bundle_path)
    assert rejected(alone, parse_pem_chain(leaves[0])[:1]).code == "revoked"
    with pytest.raises(PKIError, match="revoked"):
        own_ca.issue("peer-c")
    with pytest.raises(PKIError, match="already revoked"):
        own_ca.revoke_intermediate()


def test_the_crl_of_every_ca_in_the_path_is_required(own_ca, tmp_path, peer_verifier_for):
    """Only the intermediate's CRL: the intermediate's own status is unknown."""
    pem = own_ca.issue("peer-onecrl").cert_path.read_bytes()
    leaf_crl, root_crl = crls_in(own_ca.crl_path)
    assert leaf_crl.issuer == own_ca.intermediate_certificate().subject
    assert root_crl.issuer == own_ca.root_certificate().subject
    only_leaves = tmp_path / "leaves-only.pem"
    only_leaves.write_bytes(leaf_crl.public_bytes(serialization.Encoding.PEM))
    err = rejected(peer_verifier_for(own_ca, crl_path=only_leaves), pem)
    assert err.code == "crl_unavailable"
    assert "Intermediate CA" in err.detail
    lenient = peer_verifier_for(own_ca, crl_path=only_leaves, require_crl=False)
    assert lenient.verify(pem).service_name == "peer-onecrl"


def test_a_root_crl_signed_by_another_key_is_invalid(own_ca, rogue_ca, tmp_path, peer_verifier_for):
    pem = own_ca.issue("peer-forgedroot").cert_path.read_bytes()
    leaf_crl, _ = crls_in(own_ca.crl_path)
    rogue_root_key = serialization.load_pem_private_key(
        rogue_ca.root_key_path.read_bytes(), password=None
    )
    now = dt.datetime.now(UTC)
    forged = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(own_ca.root_certificate().subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=1))
        .sign(rogue_root_key, hashes.SHA256())
    )
    path = tmp_path / "forged-root.pem"
    path.write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf_crl, forged))
    )
    assert rejected(peer_verifier_for(own_ca, crl_path=path), pem).code == "crl_invalid"


def _crls_without_next_update(ca, issued_at: dt.datetime, tmp_path):
    """crl.pem of ``ca`` with the intermediate's CRL issued at ``issued_at``, no nextUpdate."""
    inter, inter_key = ca.load_intermediate()
    leaf_crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(inter.subject)
        .last_update(issued_at)
        .next_update(issued_at + dt.timedelta(days=1))  # removed below
        .sign(inter_key, hashes.SHA256())
    )
    _, root_crl = crls_in(ca.crl_path)
    path = tmp_path / "no-next-update.pem"
    path.write_bytes(
        without_next_update(leaf_crl, inter_key).public_bytes(serialization.Encoding.PEM)
        + root_crl.public_bytes(serialization.Encoding.PEM)
    )
    return path


def test_a_crl_without_next_update_goes_stale_after_the_maximum_age(
    ca, tmp_path, peer_verifier_for
):
    pem = ca.issue("peer-nonext").cert_path.read_bytes()
    issued_at = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    path = _crls_without_next_update(ca, issued_at, tmp_path)
    v = peer_verifier_for(ca, crl_path=path, crl_max_age=3600)
    assert v.verify(pem, now=issued_at + dt.timedelta(seconds=3599)).service_name == "peer-nonext"
    err = rejected(v, pem, now=issued_at + dt.timedelta(seconds=3601))
    assert err.code == "crl_stale"
    assert "no nextUpdate" in err.detail
    # The default maximum is a week: the same CRL is fresh at first, stale after 8 days.
    default = peer_verifier_for(ca, crl_path=path)
    assert default.verify(pem).service_name == "peer-nonext"
    later = issued_at + dt.timedelta(days=8)
    assert rejected(default, pem, now=later).code in {"crl_stale", "expired"}
    with pytest.raises(ValueError):
        peer_verifier_for(ca, crl_path=path, crl_max_age=0)


def test_crl_max_age_comes_from_the_settings(ca, tmp_path):
    pem = ca.issue("peer-maxage").cert_path.read_bytes()
    issued_at = dt.datetime.now(UTC) - dt.timedelta(minutes=10)
    path = _crls_without_next_update(ca, issued_at, tmp_path)
    conf = {
        "PKI_DIR": str(ca.directory),
        "CRL_FILE": str(path),
        "TRUST_DOMAIN": "fleamarket.local",
    }
    with override_settings(S2S_AUTH={**conf, "CRL_MAX_AGE": 60}):
        assert peer_verifier().crl_max_age == dt.timedelta(seconds=60)
        assert rejected(peer_verifier(), pem).code == "crl_stale"
    with override_settings(S2S_AUTH=conf):
        assert peer_verifier().verify(pem).service_name == "peer-maxage"


def test_crl_from_another_ca(ca, rogue_ca, peer_verifier_for):
    pem = ca.issue("peer-othercrl").cert_path.read_bytes()
    v = peer_verifier_for(ca, crl_path=rogue_ca.crl_path)
    assert rejected(v, pem).code == "crl_unavailable"
    lenient = peer_verifier_for(ca, crl_path=rogue_ca.crl_path, require_crl=False)
    assert lenient.verify(pem).service_name == "peer-othercrl"


def test_forged_crl_signature(ca, rogue_ca, tmp_path, peer_verifier_for):
    """A CRL naming our intermediate but signed by another key is refused."""
    _, rogue_key = rogue_ca.load_intermediate()
    now = dt.datetime.now(UTC)
    forged = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.intermediate_certificate().subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=1))
        .sign(rogue_key, hashes.SHA256())
    )
    path = tmp_path / "forged.pem"
    path.write_bytes(forged.public_bytes(serialization.Encoding.PEM))
    pem = ca.issue("peer-forgedcrl").cert_path.read_bytes()
    v = peer_verifier_for(ca, crl_path=path, require_crl=False)
    assert rejected(v, pem).code == "crl_invalid"


def test_corrupt_crl_fails_closed(ca, tmp_path, peer_verifier_for):
    path = tmp_path / "crl.pem"
    path.write_text("-----BEGIN X509 CRL-----\nnot base64!\n-----END X509 CRL-----\n")
    pem = ca.issue("peer-corruptcrl").cert_path.read_bytes()
    v = peer_verifier_for(ca, crl_path=path, require_crl=False)
    assert rejected(v, pem).code == "crl_invalid"


def test_crl_bundle_with_several_issuers(ca, rogue_ca, tmp_path, peer_verifier_for):
    bundle = tmp_path / "crls.pem"
    bundle.write_bytes(rogue_ca.crl_path.read_bytes() + ca.crl_path.read_bytes())
    issued = ca.issue("peer-bundle")
    v = peer_verifier_for(ca, crl_path=bundle)
    assert v.verify(issued.cert_path.read_bytes()).serial == issued.serial


# -- anchors ---------------------------------------------------------------------------


def test_anchors_reloaded_when_file_changes(ca, rogue_ca, tmp_path, peer_verifier_for):
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(ca.ca_path.read_bytes())
    crls = tmp_path / "crls.pem"
    crls.write_bytes(ca.crl_path.read_bytes() + rogue_ca.crl_path.read_bytes())
    v = peer_verifier_for(ca, anchors_path=anchors, crl_path=crls)
    rogue_pem = rogue_ca.issue("peer-anchor").cert_path.read_bytes()
    assert rejected(v, rogue_pem).code == "untrusted_chain"
    tmp = tmp_path / "anchors.new"
    tmp.write_bytes(ca.ca_path.read_bytes() + rogue_ca.ca_path.read_bytes())
    os.replace(tmp, anchors)
    assert v.verify(rogue_pem).service_name == "peer-anchor"


def test_anchors_missing(ca, tmp_path, peer_verifier_for):
    pem = ca.issue("peer-noanchor").cert_path.read_bytes()
    v = peer_verifier_for(ca, anchors_path=tmp_path / "nope.pem")
    assert rejected(v, pem).code == "trust_anchors_unavailable"


# -- parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        "",
        b"garbage",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
        [],
        [b"\x30\x03\x02\x01\x01"],
        "caf\u00e9",
    ],
)
def test_malformed(verifier, data):
    with pytest.raises(CertificateRejected) as info:
        parse_pem_chain(data)
    assert info.value.code == "malformed_certificate"
    assert info.value.fingerprint is None
    assert rejected(verifier, data).code == "malformed_certificate"


# -- concurrency -----------------------------------------------------------------------


def test_concurrent_verification_during_crl_rewrites(ca, verifier):
    pem = ca.issue("peer-threads").cert_path.read_bytes()
    errors: list[BaseException] = []

    def worker():
        try:
            for _ in range(30):
                assert verifier.verify(pem).service_name == "peer-threads"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(5):
        ca.write_crl()
    for t in threads:
        t.join()
    assert errors == []


# -- settings-bound factory ------------------------------------------------------------


def test_peer_verifier_from_settings_is_cached_and_reset(ca):
    conf = {"PKI_DIR": str(ca.directory), "REQUIRE_CRL": False, "TRUST_DOMAIN": "fleamarket.local"}
    with override_settings(S2S_AUTH=conf):
        first = peer_verifier()
        assert first is peer_verifier()
        assert first.anchors_path == ca.ca_path
        assert first.crl_path == ca.crl_path
        assert first.trust_domain == "fleamarket.local"
        assert first.require_crl is False
        assert first.intermediates_path == ca.directory / "intermediates.pem"
        pem = ca.issue("peer-settings").cert_path.read_bytes()
        assert first.verify(pem).service_name == "peer-settings"
    with override_settings(S2S_AUTH={**conf, "TRUST_DOMAIN": "other.local"}):
        second = peer_verifier()
        assert second is not first
        assert second.trust_domain == "other.local"
        assert rejected(second, pem).code == "foreign_trust_domain"


def test_verify_pem_reuses_a_success_until_the_crl_changes(ca, verifier):
    pem = ca.issue("peer-remembered").cert_path.read_text()
    first = verifier.verify_pem(pem)
    assert verifier.verify_pem(pem) is first  # remembered: no second path validation
    ca.revoke("peer-remembered")
    with pytest.raises(CertificateRejected) as info:
        verifier.verify_pem(pem)
    assert info.value.code == "revoked"


def test_leaf_pem_is_the_leaf_encoded_once_per_remembered_peer(ca, verifier):
    """The audit evidence of a keep-alive connection's peer: the leaf's own PEM,
    encoded on the first request and read from the remembered peer afterwards."""
    pem = ca.issue("peer-pem").cert_path.read_text()
    peer = verifier.verify_pem(pem)
    expected = peer.leaf.public_bytes(serialization.Encoding.PEM).decode()
    assert peer.leaf_pem == expected and parse_pem_chain(expected)[0] == peer.leaf
    assert verifier.verify_pem(pem).leaf_pem is peer.leaf_pem


def test_verify_pem_remembers_each_chain_for_itself(ca, verifier):
    """Entries are keyed by the whole chain: another certificate (of the same service
    too) is verified on its own, and a chain given as bytes is the same chain."""
    first = ca.issue("peer-keyed").cert_path.read_text()
    second = ca.issue("peer-keyed").cert_path.read_text()
    assert first != second
    one, two = verifier.verify_pem(first), verifier.verify_pem(second)
    assert one.fingerprint != two.fingerprint
    assert verifier.verify_pem(first) is one and verifier.verify_pem(second) is two
    for raw in (first.encode(), bytearray(first.encode())):
        assert verifier.verify_pem(raw).fingerprint == one.fingerprint


def test_verify_pem_never_remembers_a_refusal(rogue_ca, verifier):
    pem = rogue_ca.issue("peer-rogue-twice").cert_path.read_text()
    for _ in range(2):
        with pytest.raises(CertificateRejected):
            verifier.verify_pem(pem)
