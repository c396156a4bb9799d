"""The file-based CA: files, modes, certificate contents, renew, revoke, CRL, command."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import ssl
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.core.management import CommandError, call_command
from django.test import override_settings

from s2s_auth.core import ca as ca_module
from s2s_auth.core.ca import CertificateAuthority, InvalidName, PKIError
from s2s_auth.core.certs import PeerVerifier
from s2s_auth.core.x509 import CertificateRejected, fingerprint
from tests.s2s_auth.core.crl_support import crls_in


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def ext(cert: x509.Certificate, cls):
    return cert.extensions.get_extension_for_class(cls)


# -- init ------------------------------------------------------------------------------


def test_init_files_and_modes(ca):
    assert ca.ca_path == ca.directory / "ca.pem"
    for path in (ca.root_key_path, ca.intermediate_key_path, ca.index_path):
        assert path.parent == ca.directory / "ca"
        assert mode(path) == 0o600, path
    assert mode(ca.private_dir) == 0o700
    assert ca.intermediate_path.exists()
    assert ca.intermediates_bundle_path == ca.directory / "intermediates.pem"
    assert ca.intermediates_bundle_path.read_bytes() == ca.intermediate_path.read_bytes()
    assert ca.crl_path.exists()
    assert b"PRIVATE KEY" not in ca.ca_path.read_bytes()
    index = json.loads(ca.index_path.read_text())
    assert index["trust_domain"] == "fleamarket.local"
    assert isinstance(index["certificates"], list)
    # no temp files left behind
    assert not [p for p in ca.directory.rglob("*.tmp")]


def test_root_and_intermediate_extensions(ca):
    root = ca.root_certificate()
    inter = ca.intermediate_certificate()
    assert root.subject == root.issuer
    bc = ext(root, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 1
    ku = ext(root, x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    root_ski = ext(root, x509.SubjectKeyIdentifier).value
    assert isinstance(root.public_key().curve, type(inter.public_key().curve))
    assert root.public_key().curve.name == "secp256r1"

    assert inter.issuer == root.subject
    ibc = ext(inter, x509.BasicConstraints).value
    assert ibc.ca and ibc.path_length == 0
    assert ext(inter, x509.AuthorityKeyIdentifier).value.key_identifier == root_ski.digest
    ext(inter, x509.SubjectKeyIdentifier)
    inter.verify_directly_issued_by(root)
    assert inter.not_valid_after_utc <= root.not_valid_after_utc
    lifetime = inter.not_valid_after_utc - inter.not_valid_before_utc
    assert dt.timedelta(days=364) < lifetime < dt.timedelta(days=366)


def test_init_refuses_to_overwrite(tmp_path):
    authority = CertificateAuthority(tmp_path / "pki", "example.org")
    first = authority.init(root_days=30, intermediate_days=10)
    with pytest.raises(PKIError, match="already exists"):
        authority.init()
    assert authority.root_certificate() == first
    second = authority.init(force=True)
    assert second != first
    assert authority.root_certificate() == second


def test_issue_without_ca_is_a_clear_error(tmp_path):
    with pytest.raises(PKIError, match="init"):
        CertificateAuthority(tmp_path, "example.org").issue("users")


# -- issue -----------------------------------------------------------------------------


def test_issue_files_modes_and_chain(ca):
    issued = ca.issue("svc-files")
    assert issued.cert_path == ca.directory / "svc-files.pem"
    assert issued.key_path == ca.directory / "svc-files.key"
    assert mode(issued.key_path) == 0o600
    assert b"BEGIN PRIVATE KEY" in issued.key_path.read_bytes()  # PKCS8
    chain = x509.load_pem_x509_certificates(issued.cert_path.read_bytes())
    assert len(chain) == 2
    leaf, inter = chain
    assert inter == ca.intermediate_certificate()
    leaf.verify_directly_issued_by(inter)
    assert fingerprint(leaf) == issued.fingerprint
    assert leaf.serial_number == issued.serial
    assert issued.spiffe_id == "spiffe://fleamarket.local/service/svc-files"
    assert ca.load_key("svc-files").public_key() == leaf.public_key()
    entry = [e for e in ca.certificates() if e["serial"] == issued.serial]
    assert entry and entry[0]["name"] == "svc-files" and entry[0]["revoked_at"] is None
    assert entry[0]["fingerprint"] == issued.fingerprint


def test_issue_sans_eku_key_usage_lifetime(ca):
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    issued = ca.issue(
        "svc-sans", hours=2, dns_names=("localhost", "svc.internal"), ip_addresses=("::1",)
    )
    leaf = ca.load_certificate("svc-sans")
    san = ext(leaf, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://fleamarket.local/service/svc-sans"
    ]
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "svc.internal"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("::1")]
    eku = ext(leaf, x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    ku = ext(leaf, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    bc = ext(leaf, x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    inter_ski = ext(ca.intermediate_certificate(), x509.SubjectKeyIdentifier).value
    assert ext(leaf, x509.AuthorityKeyIdentifier).value.key_identifier == inter_ski.digest
    ext(leaf, x509.SubjectKeyIdentifier)
    assert leaf.public_key().curve.name == "secp256r1"
    # not_before backdated by a minute, lifetime as asked
    assert before - dt.timedelta(minutes=2) <= leaf.not_valid_before_utc <= before
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert dt.timedelta(hours=2) <= lifetime <= dt.timedelta(hours=2, minutes=2)
    assert issued.not_after == leaf.not_valid_after_utc


def test_default_sans(ca):
    ca.issue("svc-default")
    san = ext(ca.load_certificate("svc-default"), x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


def test_serials_are_random_and_unique(ca):
    serials = {ca.issue("svc-serial").serial for _ in range(3)}
    assert len(serials) == 3
    assert all(s.bit_length() > 64 for s in serials)


def test_chain_and_key_load_in_ssl(ca):
    issued = ca.issue("svc-ssl")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(issued.cert_path, issued.key_path)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_cert_chain(issued.cert_path, issued.key_path)
    client.load_verify_locations(cafile=ca.ca_path)


@pytest.mark.parametrize(
    "name",
    ["", "Users", "../etc", "a/b", "a.b", "-lead", "trail-", "x" * 64, "ca", "crl", "us\ner"],
)
def test_invalid_names_rejected(ca, name):
    with pytest.raises(ValueError, match="Invalid service name") as info:
        ca.issue(name)
    assert isinstance(info.value, InvalidName) and isinstance(info.value, PKIError)
    assert not list(ca.directory.glob("*etc*"))


def test_valid_name_edge_cases(ca):
    assert ca.issue("a").cert_path.name == "a.pem"
    assert ca.issue("9" + "x" * 61 + "9").name == "9" + "x" * 61 + "9"


def test_custom_validity_window(ca):
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(2020, 1, 2, tzinfo=dt.UTC)
    issued = ca.issue("svc-window", not_before=start, not_after=end)
    leaf = ca.load_certificate("svc-window")
    assert leaf.not_valid_before_utc == start and leaf.not_valid_after_utc == end
    assert issued.not_after == end


def test_issue_refuses_to_outlive_intermediate(ca):
    with pytest.raises(PKIError, match="outlive the intermediate"):
        ca.issue("svc-long", hours=24 * 400)


def test_issue_bad_ip(ca):
    with pytest.raises(PKIError, match="Invalid IP"):
        ca.issue("svc-badip", ip_addresses=("not-an-ip",))


# -- renew -----------------------------------------------------------------------------


def test_renew_keeps_old_certificate_valid(ca, peer_verifier_for):
    old = ca.issue("svc-renew", dns_names=("renew.internal",), ip_addresses=())
    old_chain = ca.load_chain("svc-renew")
    old_key = ca.load_key("svc-renew")
    new = ca.renew("svc-renew")
    assert new.serial != old.serial and new.fingerprint != old.fingerprint
    assert ca.load_key("svc-renew").public_key() != old_key.public_key()
    # SANs carried over
    san = ext(ca.load_certificate("svc-renew"), x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["renew.internal"]
    assert san.get_values_for_type(x509.IPAddress) == []
    # neither revoked: both verify
    entries = {e["serial"]: e for e in ca.certificates() if e["name"] == "svc-renew"}
    assert entries[old.serial]["revoked_at"] is None
    verifier = peer_verifier_for(ca)
    assert verifier.verify(old_chain).serial == old.serial
    assert verifier.verify(ca.load_chain("svc-renew")).serial == new.serial


def test_renew_unknown_name(ca):
    with pytest.raises(PKIError, match="never issued"):
        ca.renew("never-seen")


# -- revoke and CRL --------------------------------------------------------------------


def test_revoke_by_name_revokes_all_unexpired_and_writes_crl(ca):
    first = ca.issue("svc-revoke")
    second = ca.renew("svc-revoke")
    other = ca.issue("svc-bystander")
    revoked = ca.revoke("svc-revoke")
    assert sorted(revoked) == sorted([first.serial, second.serial])
    crl = x509.load_pem_x509_crl(ca.crl_path.read_bytes())
    inter = ca.intermediate_certificate()
    assert crl.issuer == inter.subject
    assert crl.is_signature_valid(inter.public_key())
    for serial in revoked:
        entry = crl.get_revoked_certificate_by_serial_number(serial)
        assert entry is not None
        assert abs(entry.revocation_date_utc - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert crl.get_revoked_certificate_by_serial_number(other.serial) is None
    index = {e["serial"]: e for e in ca.certificates()}
    assert index[first.serial]["revoked_at"] and index[other.serial]["revoked_at"] is None
    with pytest.raises(PKIError, match="no unexpired"):
        ca.revoke("svc-revoke")


def test_revoke_by_serial_decimal_and_hex(ca):
    a = ca.issue("svc-serial-rev")
    b = ca.renew("svc-serial-rev")
    assert ca.revoke(str(a.serial)) == [a.serial]
    assert ca.revoke(hex(b.serial)) == [b.serial]
    crl = x509.load_pem_x509_crl(ca.crl_path.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(a.serial) is not None
    assert crl.get_revoked_certificate_by_serial_number(b.serial) is not None
    with pytest.raises(PKIError, match="already revoked"):
        ca.revoke(a.serial)


def test_revoke_skips_expired_certificates(ca):
    now = dt.datetime.now(dt.UTC)
    expired = ca.issue(
        "svc-old", not_before=now - dt.timedelta(hours=3), not_after=now - dt.timedelta(hours=1)
    )
    current = ca.renew("svc-old")
    assert ca.revoke("svc-old") == [current.serial]
    assert {e["serial"]: e for e in ca.certificates()}[expired.serial]["revoked_at"] is None


def test_index_drops_entries_expired_past_the_retention(ca):
    """Renewing every few minutes must not grow the index without bound: an entry
    expired for longer than the retention goes at the next issuance, one expired more
    recently (and its revocation in the CRL) stays."""
    now = dt.datetime.now(dt.UTC)
    retention = ca.expired_entry_retention
    assert retention >= max(ca_module.EXPIRED_ENTRY_RETENTION, 2 * ca.crl_validity)
    long_gone = ca.issue(
        "svc-churn",
        not_before=now - retention - dt.timedelta(hours=2),
        not_after=now - retention - dt.timedelta(hours=1),
    )
    assert ca.issued(long_gone.serial) is not None
    recent = ca.issue(
        "svc-churn", not_before=now - dt.timedelta(hours=2), not_after=now - dt.timedelta(hours=1)
    )
    current = ca.renew("svc-churn")
    serials = {e["serial"] for e in ca.certificates()}
    assert long_gone.serial not in serials
    assert {recent.serial, current.serial} <= serials
    assert ca.issued(long_gone.serial) is None and ca.issued(recent.serial) is not None


@pytest.mark.parametrize("target", ["nobody", "12345", "0xdeadbeef", "0xzz", "!!"])
def test_revoke_nothing_matches(ca, target):
    with pytest.raises(PKIError):
        ca.revoke(target)


def test_write_crl_metadata(ca):
    before = x509.load_pem_x509_crl(ca.crl_path.read_bytes())
    path = ca.write_crl(days=3)
    assert path == ca.crl_path
    crl = x509.load_pem_x509_crl(path.read_bytes())
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    old = before.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > old
    validity = crl.next_update_utc - crl.last_update_utc
    assert dt.timedelta(days=3) - dt.timedelta(seconds=2) <= validity <= dt.timedelta(days=3)
    inter_ski = ext(ca.intermediate_certificate(), x509.SubjectKeyIdentifier).value
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == inter_ski.digest


def test_crl_file_holds_a_crl_per_ca_each_signed_by_it(ca):
    """The intermediate's CRL (service certificates), then the root's (intermediates)."""
    ca.write_crl(days=2)
    leaves, cas = crls_in(ca.crl_path)
    for crl, issuer in ((leaves, ca.intermediate_certificate()), (cas, ca.root_certificate())):
        assert crl.issuer == issuer.subject
        assert crl.is_signature_valid(issuer.public_key())
        aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        assert aki.key_identifier == ext(issuer, x509.SubjectKeyIdentifier).value.digest
        assert crl.next_update_utc - crl.last_update_utc <= dt.timedelta(days=2)
    number = leaves.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert cas.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == number


def test_revoke_intermediate_lists_it_in_the_roots_crl(tmp_path):
    authority = CertificateAuthority(tmp_path / "pki", "revoke.test")
    authority.init()
    leaf = authority.issue("svc-under")
    serial = authority.revoke_intermediate()
    leaves, cas = crls_in(authority.crl_path)
    assert cas.get_revoked_certificate_by_serial_number(serial) is not None
    assert leaves.get_revoked_certificate_by_serial_number(leaf.serial) is None
    index = json.loads(authority.index_path.read_text())
    assert [e["serial"] for e in index["revoked_cas"]] == [serial]
    # Rewriting the CRLs keeps it listed.
    authority.write_crl()
    assert crls_in(authority.crl_path)[1].get_revoked_certificate_by_serial_number(serial)
    with pytest.raises(PKIError, match="revoked"):
        authority.renew("svc-under")


# -- management command ----------------------------------------------------------------


def test_management_command_end_to_end(tmp_path, capsys):
    pki = tmp_path / "pki"
    conf = {"PKI_DIR": str(pki), "CERT_LIFETIME_HOURS": 5, "TRUST_DOMAIN": "cmd.test"}
    with override_settings(S2S_AUTH=conf):
        call_command("s2s_pki", "init")
        assert (pki / "ca.pem").exists() and mode(pki / "ca" / "root.key") == 0o600
        with pytest.raises(CommandError, match="already exists"):
            call_command("s2s_pki", "init")
        call_command("s2s_pki", "init", "--force")

        call_command("s2s_pki", "issue", "ads", "--dns", "ads", "localhost", "--ip", "10.0.0.2")
        out = capsys.readouterr().out
        leaf = x509.load_pem_x509_certificates((pki / "ads.pem").read_bytes())[0]
        assert fingerprint(leaf) in out
        assert str(pki / "ads.pem") in out and str(pki / "ads.key") in out
        assert "PRIVATE KEY" not in out
        san = ext(leaf, x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
            "spiffe://cmd.test/service/ads"
        ]
        assert san.get_values_for_type(x509.DNSName) == ["ads", "localhost"]
        assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.2")]
        lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
        assert dt.timedelta(hours=5) <= lifetime <= dt.timedelta(hours=5, minutes=2)

        call_command("s2s_pki", "renew", "ads", "--hours", "1")
        renewed = x509.load_pem_x509_certificates((pki / "ads.pem").read_bytes())[0]
        assert renewed.serial_number != leaf.serial_number
        assert ext(renewed, x509.SubjectAlternativeName).value == san
        capsys.readouterr()

        verifier = PeerVerifier(pki / "ca.pem", pki / "crl.pem", "cmd.test")
        assert verifier.verify((pki / "ads.pem").read_bytes()).service_name == "ads"

        call_command("s2s_pki", "revoke", hex(renewed.serial_number))
        assert hex(renewed.serial_number) in capsys.readouterr().out
        with pytest.raises(CertificateRejected) as info:
            verifier.verify((pki / "ads.pem").read_bytes())
        assert info.value.code == "revoked"

        call_command("s2s_pki", "crl", "--days", "2")
        crl = x509.load_pem_x509_crl((pki / "crl.pem").read_bytes())
        assert crl.get_revoked_certificate_by_serial_number(renewed.serial_number)
        assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is None

        call_command("s2s_pki", "issue", "users")
        assert verifier.verify((pki / "users.pem").read_bytes()).service_name == "users"
        capsys.readouterr()
        call_command("s2s_pki", "revoke", "--intermediate")
        inter = x509.load_pem_x509_certificate((pki / "ca" / "intermediate.pem").read_bytes())
        assert f"{inter.serial_number:#x}" in capsys.readouterr().out
        with pytest.raises(CertificateRejected) as info:
            verifier.verify((pki / "users.pem").read_bytes())
        assert info.value.code == "revoked"
        with pytest.raises(CommandError, match="revoked"):
            call_command("s2s_pki", "issue", "late")

        for argv, message in [
            (("issue", "../x"), "Invalid service name"),
            (("renew", "nobody"), "never issued"),
            (("revoke", "nobody"), "neither"),
            (("revoke",), "one of them"),
            (("revoke", "ads", "--intermediate"), "one of them"),
        ]:
            with pytest.raises(CommandError, match=message):
                call_command("s2s_pki", *argv)


def test_management_command_requires_action():
    with pytest.raises(CommandError):
        call_command("s2s_pki")
