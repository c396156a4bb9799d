"""Renewed certificates are picked up without a restart and without a failed call.

A real gunicorn (the shipped configuration, TLS worker, two workers) on loopback, with
certificates of the session CA; the files are replaced the way the renewal agent
replaces them (:func:`s2s_auth.core.files.write_pair`: key first, chain second).

* Server side: the next handshake presents the renewed server certificate; caught
  between the two replaces (the new key beside the old chain), it keeps serving with
  the previous certificate.
* Client side: ``ServiceClient`` presents the renewed client certificate on a new
  connection (the pooled one is recycled), and under concurrent calls through several
  renewals every call succeeds with a coherent snapshot: the certificate-bound token
  and the service JWT's ``kid`` are those of the certificate on the connection.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import uuid
from types import SimpleNamespace

import pytest
from cryptography import x509

from s2s_auth.client import ServiceClient
from s2s_auth.client.auth import ServiceCredentials, ServiceJWTAuth
from s2s_auth.client.token_manager import BearerTokenAuth, TokenManager
from s2s_auth.core import issuance
from s2s_auth.core.files import PRIVATE_FILE, same_key, write_atomic
from s2s_auth.core.jose import unverified_header
from s2s_auth.core.x509 import fingerprint

from .test_gunicorn import GUNICORN_CONF, free_port, live_server

pytestmark = pytest.mark.live

APP = "tests.s2s_auth.tls.wsgi_renewal:application"


@pytest.fixture(scope="module")
def pki(ca):
    suffix = uuid.uuid4().hex[:8]
    names = SimpleNamespace(server=f"srv-{suffix}", client=f"cli-{suffix}")
    ca.issue(names.server, dns_names=["localhost"], ip_addresses=["127.0.0.1"])
    ca.issue(names.client)
    return SimpleNamespace(ca=ca, **vars(names))


@pytest.fixture(scope="module")
def server(pki, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("renewal-gunicorn") / "gunicorn.log"
    cert, key = pki.ca.paths(pki.server)
    env = {
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "4",
        "TLS_CERT": str(cert),
        "TLS_KEY": str(key),
        "TLS_CA": str(pki.ca.ca_path),
        "S2S_RENEWAL_AGENT": "0",  # the test replaces the files itself
    }
    argv = [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, APP]
    with live_server(argv, port=port, log=log, env=env) as (proc, _):
        yield SimpleNamespace(port=port, url=f"https://127.0.0.1:{port}", proc=proc, log=log)


def server_certificate(pki, port) -> x509.Certificate:
    """The certificate the server presents in a fresh handshake."""
    context = ssl.create_default_context(cafile=str(pki.ca.ca_path))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def client(pki, server, **kwargs) -> ServiceClient:
    return ServiceClient(
        server.url, ca_bundle=pki.ca.ca_path, cert=pki.ca.paths(pki.client), **kwargs
    )


def test_server_presents_the_renewed_certificate_without_a_restart(pki, server):
    before = server_certificate(pki, server.port)

    renewed = pki.ca.renew(pki.server, hours=1)

    # Several handshakes: whichever worker takes them has the new certificate.
    serials = {server_certificate(pki, server.port).serial_number for _ in range(6)}
    assert serials == {renewed.serial} != {before.serial_number}
    assert server.proc.poll() is None


def test_server_caught_between_key_and_chain_keeps_the_previous_certificate(pki, server):
    current = server_certificate(pki, server.port)
    cert_path, key_path = pki.ca.paths(pki.server)
    key = issuance.new_key()

    write_atomic(key_path, issuance.key_pem(key), PRIVATE_FILE)  # the key only, so far

    # Still served, with a certificate the CA issued before (the current one; a worker
    # forked meanwhile has the master's), never one for the half-written key.
    during = server_certificate(pki, server.port)
    assert during.serial_number == current.serial_number or pki.ca.issued(during.serial_number)
    assert not same_key(during.public_key(), key.public_key())
    chain = pki.ca.certify(
        pki.server,
        key.public_key(),
        spiffe_id=pki.ca.spiffe_id(pki.server),
        hours=1,
        dns_names=["localhost"],
        ip_addresses=["127.0.0.1"],
    )
    write_atomic(cert_path, issuance.certs_pem(*chain), 0o644)
    assert server_certificate(pki, server.port).serial_number == chain[0].serial_number


def test_client_presents_the_renewed_certificate_on_a_new_connection(pki, server):
    with client(pki, server) as session:
        first = session.get("/").json()
        again = session.get("/").json()
        assert again["remote_port"] == first["remote_port"]  # kept alive

        renewed = pki.ca.renew(pki.client, hours=1)
        after = session.get("/").json()

    assert first["fingerprint"] != after["fingerprint"] == renewed.fingerprint
    assert after["remote_port"] != first["remote_port"]  # the pooled connection recycled


def test_concurrent_calls_through_renewals_all_succeed_coherently(pki, server):
    cert_path, key_path = pki.ca.paths(pki.client)
    manager = TokenManager(
        server.url + "/token",
        client_id=pki.client,
        cert=(cert_path, key_path),
        auth_method="tls_client_auth",
        ca_bundle=pki.ca.ca_path,
    )
    credentials = ServiceCredentials.from_files(cert_path, key_path)
    audience = pki.ca.spiffe_id(pki.server)
    errors: list[BaseException] = []
    seen: list[tuple[str, str]] = []
    calls = threading.Semaphore(0)
    done = threading.Event()

    def caller(index: int) -> None:
        auth = (
            BearerTokenAuth(manager)
            if index % 2
            else ServiceJWTAuth(credentials, audience, send_x5c=False)
        )
        with client(pki, server, auth=auth) as session:
            while not done.is_set():
                try:
                    body = session.get("/").json()
                    seen.append((body["fingerprint"], body["authorization"]))
                except BaseException as exc:
                    errors.append(exc)
                    return
                calls.release()

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    issued = [fingerprint(pki.ca.load_certificate(pki.client))]
    try:
        for _ in range(4):
            for _ in range(30):  # renew after every 30 calls
                assert calls.acquire(timeout=30), errors
            issued.append(pki.ca.renew(pki.client, hours=1).fingerprint)
        for _ in range(30):
            assert calls.acquire(timeout=30), errors
    finally:
        done.set()
        for thread in threads:
            thread.join(30)
        manager.close()

    assert errors == []
    fingerprints = {fp for fp, _ in seen}
    assert issued[-1] in fingerprints and len(fingerprints) >= 3
    assert fingerprints <= set(issued)
    for fp, authorization in seen:
        scheme, value = authorization.split(" ", 1)
        if scheme == "Bearer":  # bound to the certificate it travelled with
            assert value == f"bound-to-{fp}"
        else:  # signed with the key of the certificate on the connection
            assert unverified_header(value)["kid"] == fp
    # A new bound token for each certificate a bearer call travelled with (under load a
    # bearer thread may not call at all between two renewals, so not necessarily 5).
    bearer_certificates = {fp for fp, authorization in seen if authorization.startswith("Bearer ")}
    assert len(bearer_certificates) >= 2
    assert manager.fetch_count >= len(bearer_certificates)
