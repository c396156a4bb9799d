"""s2s_auth.tls: a real gunicorn (the shipped gunicorn_conf, TLSWorker) on loopback, and
the TLS server policy and environ of s2s_auth.tls.server.

The helpers at the top (``free_port``, ``live_server``, ``https_get``) start and talk to
real server processes; ``test_runserver_tls`` reuses them.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import http.client
import importlib
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from gunicorn.config import Config

from s2s_auth.tls import gunicorn as s2s_gunicorn
from s2s_auth.tls import server as tls_server
from s2s_auth.tls.gunicorn_conf import config_from_env

REPO = Path(__file__).resolve().parents[3]
#: The shipped configuration, as a user passes it to ``gunicorn -c``.
GUNICORN_CONF = "python:s2s_auth.tls.gunicorn_conf"
STARTUP_TIMEOUT = 15.0

pytestmark = pytest.mark.live


# --- throwaway PKI (to be replaced by the session fixture `ca` of s2s_auth.core.ca) ----------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(subject, key, issuer, issuer_key, *, ca, eku=(), sans=()):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _sha256(cert) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def make_tls_material(directory: Path) -> SimpleNamespace:
    """root -> intermediate -> {users (server+client), ads (client)}; a rogue CA -> rogue.

    Files as s2s_pki lays them out: ca.pem (root only), NAME.pem (leaf + intermediate),
    NAME.key.
    """
    directory.mkdir(parents=True, exist_ok=True)
    new_key = lambda: ec.generate_private_key(ec.SECP256R1())  # noqa: E731
    root_key, inter_key = new_key(), new_key()
    root = _certificate("Test Root CA", root_key, "Test Root CA", root_key, ca=True)
    inter = _certificate("Test Intermediate CA", inter_key, "Test Root CA", root_key, ca=True)
    (directory / "ca.pem").write_bytes(_pem(root))
    out = SimpleNamespace(dir=directory, ca=directory / "ca.pem", inter_fingerprint=_sha256(inter))
    loopback = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    for name, eku in (
        ("users", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
        ("ads", [ExtendedKeyUsageOID.CLIENT_AUTH]),
    ):
        key = new_key()
        spiffe = x509.UniformResourceIdentifier(f"spiffe://fleamarket.local/service/{name}")
        cert = _certificate(name, key, "Test Intermediate CA", inter_key, ca=False, eku=eku,
                            sans=[spiffe, *loopback])  # fmt: skip
        (directory / f"{name}.pem").write_bytes(_pem(cert) + _pem(inter))
        (directory / f"{name}.key").write_bytes(_key_pem(key))
        os.chmod(directory / f"{name}.key", 0o600)
        setattr(out, name, SimpleNamespace(
            cert=directory / f"{name}.pem", key=directory / f"{name}.key",
            fingerprint=_sha256(cert)))  # fmt: skip
    rogue_ca_key, rogue_key = new_key(), new_key()
    rogue_ca = _certificate("Rogue CA", rogue_ca_key, "Rogue CA", rogue_ca_key, ca=True)
    rogue = _certificate("ads", rogue_key, "Rogue CA", rogue_ca_key, ca=False,
                         eku=[ExtendedKeyUsageOID.CLIENT_AUTH])  # fmt: skip
    (directory / "rogue.pem").write_bytes(_pem(rogue) + _pem(rogue_ca))
    (directory / "rogue.key").write_bytes(_key_pem(rogue_key))
    out.rogue = SimpleNamespace(
        cert=directory / "rogue.pem", key=directory / "rogue.key", fingerprint=_sha256(rogue)
    )
    return out


@pytest.fixture(scope="module")
def _tls_material(tmp_path_factory):
    return make_tls_material(tmp_path_factory.mktemp("pki"))


# --- live servers ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout=STARTUP_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port} within {timeout} s:\n{log.read_text()}")


@contextlib.contextmanager
def live_server(argv, *, port, log: Path, env=None, cwd=REPO):
    """Run ``argv`` in its own process group until the block ends; wait for ``port``.

    Yields ``(proc, log)``; the process group is always terminated (SIGTERM, then SIGKILL).
    """
    # The echo servers need no database: CI's DATABASE_URL names one that only
    # exists with pytest-django's test_ prefix, so leave it out.
    inherited = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    full_env = {**inherited, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **(env or {})}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_for_port(port, proc, log)
        yield proc, log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):  # children of a reloader parent
            os.killpg(proc.pid, signal.SIGKILL)


def gunicorn_argv(*extra):
    return [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, *extra,
            "tests.s2s_auth.wsgi_echo:application"]  # fmt: skip


def tls_env(material, port, **extra):
    return {
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "4",
        "TLS_CERT": str(material.users.cert),
        "TLS_KEY": str(material.users.key),
        "TLS_CA": str(material.ca),
        **extra,
    }


def client_context(material, identity=None, *, maximum_version=None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(material.ca))
    if identity is not None:
        context.load_cert_chain(str(identity.cert), str(identity.key))
    if maximum_version is not None:
        context.maximum_version = maximum_version
    return context


def https_get(context, port, path="/", *, session=None, headers=None):
    """One request on a fresh TLS connection: (json, SSLSession, session_reused)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with context.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as tls:
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = http.client.HTTPResponse(tls)
        response.begin()
        body = json.loads(response.read())
        assert response.status == 200, body
        return body, tls.session, tls.session_reused


def requests_session(material, identity=None) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace verify
    session.verify = str(material.ca)
    if identity is not None:
        session.cert = (str(identity.cert), str(identity.key))
    return session


# --- the hook, without a server ---------------------------------------------------------


def _config(material, **settings) -> Config:
    config = Config()
    values = {
        "certfile": str(material.users.cert),
        "keyfile": str(material.users.key),
        "ca_certs": str(material.ca),
        "cert_reqs": ssl.CERT_OPTIONAL,
        "ssl_context": s2s_gunicorn.ssl_context,
        **settings,
    }
    for name, value in values.items():
        config.set(name, value)
    return config


def test_ssl_context_hook_policy_and_cache(_tls_material, tmp_path):
    from gunicorn import sock as gunicorn_sock

    cert = tmp_path / "users.pem"
    cert.write_bytes(_tls_material.users.cert.read_bytes())
    config = _config(_tls_material, certfile=str(cert), cert_reqs=ssl.CERT_NONE)
    context = gunicorn_sock.ssl_context(config)
    assert context.verify_mode == ssl.CERT_OPTIONAL  # requested even if config says NONE
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert not context.options & ssl.OP_NO_TICKET
    assert context.options & ssl.OP_NO_RENEGOTIATION
    # One context per process, reused for every connection ...
    assert gunicorn_sock.ssl_context(config) is context
    # ... until a file changes (renewed certificate).
    stat = cert.stat()
    os.utime(cert, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    renewed = gunicorn_sock.ssl_context(config)
    assert renewed is not context
    assert gunicorn_sock.ssl_context(config) is renewed


def test_ssl_context_hook_keeps_cert_required(_tls_material):
    from gunicorn import sock as gunicorn_sock

    config = _config(_tls_material, cert_reqs=ssl.CERT_REQUIRED)
    assert gunicorn_sock.ssl_context(config).verify_mode == ssl.CERT_REQUIRED


def test_ssl_context_hook_requires_ca(_tls_material):
    config = _config(_tls_material)
    config.set("ca_certs", None)
    with pytest.raises(ValueError, match="ca_certs"):
        s2s_gunicorn.ssl_context(config, lambda: pytest.fail("factory must not run"))


def test_config_without_env_has_tls_off():
    conf = config_from_env({})
    assert conf["bind"] == ["0.0.0.0:8000"]
    assert (conf["workers"], conf["threads"], conf["keepalive"]) == (2, 4, 5)
    assert conf["worker_class"] == "s2s_auth.tls.gunicorn.TLSWorker"
    assert conf["forwarded_allow_ips"] == ""
    assert conf["control_socket_disable"] is True and "control_socket" not in conf
    assert conf["ssl_context"] is s2s_gunicorn.ssl_context
    assert "certfile" not in conf and "cert_reqs" not in conf
    assert "%(r)s" not in conf["access_log_format"]  # no query strings in the log
    assert conf["loglevel"] == "info"


def test_config_with_tls_env(_tls_material):
    conf = config_from_env(tls_env(_tls_material, 8443))
    assert conf["bind"] == ["127.0.0.1:8443"]
    assert conf["certfile"] == str(_tls_material.users.cert)
    assert conf["keyfile"] == str(_tls_material.users.key)
    assert conf["ca_certs"] == str(_tls_material.ca)
    assert conf["cert_reqs"] == ssl.CERT_OPTIONAL
    assert (conf["workers"], conf["threads"]) == (2, 4)
    without_key = {**tls_env(_tls_material, 8443), "TLS_KEY": ""}
    assert config_from_env(without_key)["keyfile"] is None  # the key is in TLS_CERT
    without_ca = {**tls_env(_tls_material, 8443), "TLS_CA": ""}
    with pytest.raises(RuntimeError, match="TLS_CA"):
        config_from_env(without_ca)


def test_config_other_variables():
    conf = config_from_env(
        {
            "GUNICORN_BIND": "127.0.0.1:8001, [::1]:8001",
            "GUNICORN_CONTROL_SOCKET": "/run/users/gunicorn.ctl",
            "GUNICORN_LOGLEVEL": "warning",
            "FORWARDED_ALLOW_IPS": "10.0.0.5",
        }
    )
    assert conf["bind"] == ["127.0.0.1:8001", "[::1]:8001"]
    assert conf["control_socket_disable"] is False
    assert conf["control_socket"] == "/run/users/gunicorn.ctl"
    assert conf["loglevel"] == "warning"
    assert conf["forwarded_allow_ips"] == "10.0.0.5"
    with pytest.raises(RuntimeError, match="GUNICORN_WORKERS"):
        config_from_env({"GUNICORN_WORKERS": "two"})


def test_module_attributes_are_gunicorn_settings(monkeypatch, _tls_material):
    """What gunicorn reads from ``python:s2s_auth.tls.gunicorn_conf``: the module's names."""
    for name, value in tls_env(_tls_material, 8443).items():
        monkeypatch.setenv(name, value)
    import s2s_auth.tls.gunicorn_conf as module

    module = importlib.reload(module)
    try:
        assert Config().settings.keys() >= set(config_from_env(os.environ))
        for name, value in config_from_env(os.environ).items():
            assert getattr(module, name) == value
    finally:
        monkeypatch.undo()
        importlib.reload(module)


def test_server_context_from_files(_tls_material):
    context = tls_server.server_context(
        str(_tls_material.users.cert), str(_tls_material.users.key), str(_tls_material.ca)
    )
    assert context.verify_mode == ssl.CERT_OPTIONAL
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert not context.options & ssl.OP_NO_TICKET
    assert context.options & ssl.OP_NO_RENEGOTIATION
    with pytest.raises(ValueError, match="CA bundle"):
        tls_server.server_context(str(_tls_material.users.cert), None, "")


def test_peer_environ_of_a_plain_socket_is_empty():
    with socket.socket() as sock:
        assert tls_server.peer_environ(sock) == {}
        assert tls_server.peer_certificates(sock) == ()


def test_scrub_environ_removes_only_the_owned_keys():
    environ = {
        "SSL_CLIENT_CERT": "x",
        "SSL_CLIENT_CERT_CHAIN_0": "x",
        "SSL_SESSION_RESUMED": "x",
        "s2s_auth.peer_der": b"x",
        "s2s_auth.peer_chain_der": (b"x",),
        "HTTP_SSL_CLIENT_CERT": "header",
        "PATH_INFO": "/",
    }
    tls_server.scrub_environ(environ)
    assert environ == {"HTTP_SSL_CLIENT_CERT": "header", "PATH_INFO": "/"}


# --- a live gunicorn ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_gunicorn(_tls_material, tmp_path_factory):
    """gunicorn with the shipped config, TLS on, 2 workers x 4 threads: its port."""
    port = free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with live_server(gunicorn_argv(), port=port, log=log, env=tls_env(_tls_material, port)):
        yield SimpleNamespace(port=port, url=f"https://127.0.0.1:{port}", log=log)


def test_client_certificate_reaches_the_environ(_tls_material, tls_gunicorn):
    with requests_session(_tls_material, _tls_material.ads) as session:
        body = session.get(tls_gunicorn.url + "/").json()
    assert body["client_cert"] is True
    assert body["fingerprint"] == _tls_material.ads.fingerprint
    assert body["der_fingerprint"] == _tls_material.ads.fingerprint
    # The rest of the chain the client sent: the intermediate.
    assert body["chain"] == [_tls_material.inter_fingerprint]
    assert body["chain_der"] == [_tls_material.ads.fingerprint, _tls_material.inter_fingerprint]
    assert body["url_scheme"] == "https"
    assert body["session_resumed"] == "Initial"
    assert body["tls_keys"] == [
        "SSL_CLIENT_CERT",
        "SSL_CLIENT_CERT_CHAIN_0",
        "SSL_SESSION_RESUMED",
        "s2s_auth.peer_chain_der",
        "s2s_auth.peer_der",
    ]


def test_keep_alive_one_connection_every_request_sees_the_certificate(_tls_material, tls_gunicorn):
    context = client_context(_tls_material, _tls_material.ads)
    conn = http.client.HTTPSConnection("127.0.0.1", tls_gunicorn.port, context=context)
    try:
        bodies, sockets = [], []
        for i in range(3):
            conn.request("GET", f"/?n={i}")
            response = conn.getresponse()
            assert response.getheader("Connection", "").lower() != "close"
            bodies.append(json.loads(response.read()))
            sockets.append(conn.sock)
    finally:
        conn.close()
    assert sockets[0] is not None and all(s is sockets[0] for s in sockets)  # client: 1 socket
    # server: 1 TCP connection
    assert bodies[0]["remote_port"] and len({b["remote_port"] for b in bodies}) == 1
    assert len({b["pid"] for b in bodies}) == 1
    assert [b["fingerprint"] for b in bodies] == [_tls_material.ads.fingerprint] * 3
    assert all(b["chain"] == [_tls_material.inter_fingerprint] for b in bodies)


def test_keep_alive_with_requests_session(_tls_material, tls_gunicorn):
    with requests_session(_tls_material, _tls_material.ads) as session:
        bodies = [session.get(tls_gunicorn.url + f"/{i}").json() for i in range(3)]
    assert bodies[0]["remote_port"] and len({b["remote_port"] for b in bodies}) == 1
    assert all(b["fingerprint"] == _tls_material.ads.fingerprint for b in bodies)


def test_no_client_certificate_is_served_without_ssl_client_cert(_tls_material, tls_gunicorn):
    with requests_session(_tls_material) as session:
        response = session.get(tls_gunicorn.url + "/")
    assert response.status_code == 200
    body = response.json()
    assert body["client_cert"] is False
    assert body["tls_keys"] == ["SSL_SESSION_RESUMED"]
    assert body["url_scheme"] == "https"


@pytest.mark.parametrize("identity", [None, "ads"])
def test_spoofed_header_never_becomes_ssl_client_cert(_tls_material, tls_gunicorn, identity):
    forged = _tls_material.rogue.cert.read_text().split("-----END")[0].replace("\n", "")
    identity = getattr(_tls_material, identity) if identity else None
    with requests_session(_tls_material, identity) as session:
        body = session.get(
            tls_gunicorn.url + "/",
            headers={"SSL-Client-Cert": forged, "X-Forwarded-Proto": "http"},
        ).json()
    assert body["http_ssl_client_cert"] == forged  # a different key, untouched
    assert body["url_scheme"] == "https"
    if identity is None:
        assert body["client_cert"] is False
        assert "SSL_CLIENT_CERT" not in body["tls_keys"]
    else:
        assert body["fingerprint"] == _tls_material.ads.fingerprint


def test_underscore_header_is_dropped(_tls_material, tls_gunicorn):
    # "SSL_CLIENT_CERT: x" would also map to HTTP_SSL_CLIENT_CERT; gunicorn drops it.
    body, _, _ = https_get(
        client_context(_tls_material), tls_gunicorn.port, headers={"SSL_CLIENT_CERT": "forged"}
    )
    assert body["http_ssl_client_cert"] is None
    assert body["client_cert"] is False


def test_session_resumption_keeps_the_leaf_not_the_chain(_tls_material, tls_gunicorn):
    context = client_context(_tls_material, _tls_material.ads)
    first, session, reused = https_get(context, tls_gunicorn.port)
    assert not reused and first["session_resumed"] == "Initial"
    assert first["chain"] == [_tls_material.inter_fingerprint]
    # Tickets work on either of the 2 workers: they share the context built in the master.
    for _ in range(6):
        body, _, reused = https_get(context, tls_gunicorn.port, session=session)
        assert reused
        assert body["session_resumed"] == "Resumed"
        assert body["fingerprint"] == _tls_material.ads.fingerprint
        assert body["chain"] == []  # OpenSSL keeps no peer chain in a resumed session
        assert body["chain_der"] == [_tls_material.ads.fingerprint]


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"]
)
def test_client_certificate_from_another_ca_fails_the_handshake(
    _tls_material, tls_gunicorn, version
):
    context = client_context(_tls_material, _tls_material.rogue, maximum_version=version)
    with pytest.raises(ssl.SSLError) as excinfo:
        # TLS 1.3: the client's handshake completes, the server's alert arrives on read.
        https_get(context, tls_gunicorn.port)
    assert excinfo.value.reason == "TLSV1_ALERT_UNKNOWN_CA"
    # The same through requests.
    with (
        requests_session(_tls_material, _tls_material.rogue) as session,
        pytest.raises(requests.exceptions.SSLError, match="TLSV1_ALERT_UNKNOWN_CA"),
    ):
        session.get(tls_gunicorn.url + "/")


def test_tls_below_1_2_is_refused(_tls_material, tls_gunicorn):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(_tls_material.ca))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError) as excinfo:
        https_get(context, tls_gunicorn.port)
    assert excinfo.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION"  # the server's alert


def test_plain_http_to_the_tls_port_fails(tls_gunicorn):
    with socket.create_connection(("127.0.0.1", tls_gunicorn.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(4096):
                received += chunk
    assert not received.startswith(b"HTTP/")
    assert received == b""  # the server closes without an answer


def test_access_log_has_no_query_string(tls_gunicorn, _tls_material):
    with requests_session(_tls_material, _tls_material.ads) as session:
        session.get(tls_gunicorn.url + "/logged?token=very-secret-value")
    deadline = time.monotonic() + 5
    while "/logged" not in tls_gunicorn.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = tls_gunicorn.log.read_text()
    assert "GET /logged HTTP/1.1" in log
    assert "Control socket listening" not in log  # no shared ~/.gunicorn/gunicorn.ctl
    assert "very-secret-value" not in log


def test_without_tls_env_the_worker_serves_plain_http(tmp_path):
    port = free_port()
    env = {"GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1",
           "TLS_CERT": "", "TLS_KEY": "", "TLS_CA": ""}  # fmt: skip
    with live_server(gunicorn_argv(), port=port, log=tmp_path / "plain.log", env=env):
        session = requests.Session()
        session.trust_env = False
        body = session.get(
            f"http://127.0.0.1:{port}/", headers={"SSL-Client-Cert": "forged"}
        ).json()
    assert body["url_scheme"] == "http"
    assert body["tls_keys"] == []
    assert body["http_ssl_client_cert"] == "forged"


def test_bad_tls_configuration_fails_at_start_up(_tls_material, tmp_path):
    port = free_port()
    env = tls_env(_tls_material, port, TLS_KEY=str(_tls_material.ads.key))  # key of another cert
    log = tmp_path / "bad.log"
    with log.open("wb") as out:
        proc = subprocess.run(
            gunicorn_argv(), cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **env},
            stdout=out, stderr=subprocess.STDOUT, timeout=STARTUP_TIMEOUT,
        )  # fmt: skip
    assert proc.returncode != 0
    assert "cannot build the TLS context" in log.read_text()
