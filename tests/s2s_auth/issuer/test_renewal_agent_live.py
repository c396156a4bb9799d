"""The renewal agent against a real identity service: gunicorn with the shipped TLS
configuration serving the s2s_auth test project (the issuer mounted), its own SQLite
database and a throwaway CA; the agent renews over mTLS and replaces the files."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from cryptography import x509

from s2s_auth.agent import RenewalAgent, RenewalError
from s2s_auth.core import issuance
from s2s_auth.core.ca import CertificateAuthority
from s2s_auth.core.files import read_pair, same_key, write_pair
from s2s_auth.core.x509 import spiffe_uris
from tests.s2s_auth.tls.test_gunicorn import GUNICORN_CONF, free_port, live_server

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[3]
SETTINGS = "tests.s2s_auth.issuer.live_settings"
TD = "fleamarket.local"


@pytest.fixture(scope="module")
def identity_service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("renew-live")
    ca = CertificateAuthority(tmp / "pki", TD)
    ca.init()
    ca.issue("users", dns_names=["localhost"], ip_addresses=["127.0.0.1"])
    env = {
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "DATABASE_URL": f"sqlite:///{tmp / 'issuer.sqlite3'}",
        "S2S_TEST_PKI_DIR": str(ca.directory),
        "CACHE_KEY_PREFIX": f"{os.environ.get('CACHE_KEY_PREFIX', '')}-{secrets.token_hex(8)}",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        timeout=300,
    )
    port = free_port()
    server_env = {
        **env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "TLS_CERT": str(ca.directory / "users.pem"),
        "TLS_KEY": str(ca.directory / "users.key"),
        "TLS_CA": str(ca.ca_path),
        "S2S_RENEWAL_AGENT": "0",
    }
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        GUNICORN_CONF,
        "django.core.wsgi:get_wsgi_application()",
    ]
    with live_server(argv, port=port, log=tmp / "gunicorn.log", env=server_env):
        yield ca, f"https://127.0.0.1:{port}/api/v1/pki/renew"


def agent_for(ca, name, url, *, issued=None, **kwargs) -> RenewalAgent:
    ca.issue(name, **(issued or {}))
    cert, key = ca.paths(name)
    return RenewalAgent(cert, key, url=url, ca_bundle=ca.ca_path, **kwargs)


def test_agent_renews_with_a_fresh_key_and_the_same_identity(identity_service):
    ca, url = identity_service
    agent = agent_for(ca, "svc-a", url)
    _, _, old_chain, old_key = read_pair(agent.cert_path, agent.key_path)

    leaf = agent.renew()

    _, _, chain, key = read_pair(agent.cert_path, agent.key_path)
    assert chain[0] == leaf and leaf.serial_number != old_chain[0].serial_number
    assert same_key(leaf.public_key(), key.public_key())
    assert not same_key(key.public_key(), old_key.public_key())
    assert spiffe_uris(leaf) == spiffe_uris(old_chain[0]) == [f"spiffe://{TD}/service/svc-a"]
    assert agent.key_path.stat().st_mode & 0o777 == 0o600
    assert ca.issued(leaf.serial_number)["name"] == "svc-a"
    # The renewed certificate is the proof for the next renewal.
    assert agent.renew().serial_number != leaf.serial_number


def test_agent_loop_renews_when_due_and_stops(identity_service):
    ca, url = identity_service
    now = dt.datetime.now(dt.UTC)
    window = {"not_before": now - dt.timedelta(hours=1), "not_after": now + dt.timedelta(hours=1)}
    agent = agent_for(ca, "svc-b", url, issued=window)  # half of its life gone
    agent.fraction = 0.4  # due since 12 minutes
    first = agent.current()
    thread = agent.start()
    try:
        for _ in range(200):
            if agent.renewals:
                break
            threading.Event().wait(0.05)
    finally:
        agent.stop()
    assert not thread.is_alive()
    assert agent.renewals >= 1 and agent.current().serial_number != first.serial_number


def test_refusal_leaves_the_files_alone(identity_service):
    ca, url = identity_service
    agent = agent_for(ca, "svc-c", url)
    ca.revoke("svc-c")
    before = agent.cert_path.read_bytes(), agent.key_path.read_bytes()

    with pytest.raises(RenewalError) as refused:
        agent.renew()

    assert (refused.value.status, refused.value.reason) == (403, "revoked")
    assert (agent.cert_path.read_bytes(), agent.key_path.read_bytes()) == before


def test_identity_service_down_is_a_retryable_error(identity_service, tmp_path):
    ca, _ = identity_service
    agent = agent_for(ca, "svc-d", f"https://127.0.0.1:{free_port()}/api/v1/pki/renew")
    before = agent.cert_path.read_bytes()

    with pytest.raises(RenewalError) as down:
        agent.renew()

    assert down.value.reason == "unreachable" and down.value.status is None
    assert agent.cert_path.read_bytes() == before


def test_backoff_grows_with_jitter_up_to_the_cap():
    agent = RenewalAgent("x.pem", "x.key", url="https://x", retry_max=8)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (9, 8)]:
        delays = [agent.backoff(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert agent.backoff(1, retry_after=5) == 5
    assert agent.backoff(1, retry_after=500) == 8  # never past the cap


def test_answer_for_another_key_or_identity_is_not_written(ca, make_leaf):
    key = issuance.new_key()
    other = make_leaf(ca, "svc-e")
    spiffe = f"spiffe://{TD}/service/svc-e"
    chain = other.chain_pem.decode()

    with pytest.raises(RenewalError, match="not for our key"):
        RenewalAgent._check({"certificate_chain": chain}, key, spiffe)
    with pytest.raises(RenewalError, match="another identity"):
        RenewalAgent._check({"certificate_chain": chain}, other.key, f"spiffe://{TD}/service/x")
    with pytest.raises(RenewalError, match="no certificate chain"):
        RenewalAgent._check({"certificate_chain": "junk"}, key, spiffe)


def test_readers_never_see_a_mismatched_pair_while_pairs_are_replaced(ca, tmp_path):
    cert_path, key_path = tmp_path / "svc.pem", tmp_path / "svc.key"
    pairs = []
    for _ in range(4):
        key = issuance.new_key()
        leaf = ca.certify(
            "svc-f", key.public_key(), spiffe_id=f"spiffe://{TD}/service/svc-f", hours=1
        )
        pairs.append((issuance.certs_pem(*leaf), issuance.key_pem(key)))
    write_pair(cert_path, key_path, *pairs[0])
    stop = threading.Event()
    mismatched = []

    def reader():
        while not stop.is_set():
            _, _, chain, key = read_pair(cert_path, key_path)
            if not same_key(chain[0].public_key(), key.public_key()):
                mismatched.append(chain[0].serial_number)

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for thread in readers:
        thread.start()
    try:
        for round_ in range(200):
            write_pair(cert_path, key_path, *pairs[round_ % len(pairs)])
    finally:
        stop.set()
        for thread in readers:
            thread.join(10)
    assert mismatched == []


def test_agent_from_settings_derives_the_url(settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "ISSUER": "https://id.example:8443/"}
    agent = RenewalAgent.from_settings("ads")
    assert agent.url == "https://id.example:8443/api/v1/pki/renew"
    assert agent.cert_path.name == "ads.pem" and agent.fraction == pytest.approx(2 / 3)
    settings.S2S_AUTH = {**settings.S2S_AUTH, "RENEWAL_URL": "https://ca.example/renew"}
    assert RenewalAgent.from_settings("ads").url == "https://ca.example/renew"


def test_endpoint_is_reachable_only_over_mtls(identity_service):
    ca, url = identity_service
    session = requests.Session()
    session.trust_env = False
    response = session.post(
        url,
        data=b"x",
        headers={"Content-Type": "application/pkcs10"},
        verify=str(ca.ca_path),
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json()["reason"] == "certificate_required"
    assert isinstance(x509.load_pem_x509_certificates(ca.ca_path.read_bytes())[0], x509.Certificate)


def test_s2s_pki_agent_now_renews_once(identity_service, settings):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    ca, url = identity_service
    ca.issue("svc-g")
    before = ca.load_certificate("svc-g").serial_number
    settings.S2S_AUTH = {**settings.S2S_AUTH, "PKI_DIR": str(ca.directory), "RENEWAL_URL": url}
    out = StringIO()

    call_command("s2s_pki", "agent", "--name", "svc-g", "--now", stdout=out)

    after = ca.load_certificate("svc-g").serial_number
    assert after != before and f"{after:#x}" in out.getvalue()
    ca.revoke("svc-g")
    with pytest.raises(CommandError, match="Renewal failed: revoked"):
        call_command("s2s_pki", "agent", "--name", "svc-g", "--now", stdout=StringIO())
