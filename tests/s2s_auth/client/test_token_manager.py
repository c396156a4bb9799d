"""TokenManager and BearerTokenAuth against a tiny RFC 6749 token endpoint on loopback."""

from __future__ import annotations

import base64
import json
import logging
import multiprocessing
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote_plus

import pytest
from cryptography import x509

from s2s_auth.client import ServiceClient
from s2s_auth.client.token_manager import BearerTokenAuth, TokenEndpointError, TokenManager
from s2s_auth.core.jose import unverified_header, verify

SECRET = "s3cr3t p@ss:w/rd+%"  # characters that Basic auth must form-encode


class TokenServer:
    """``POST /token`` (client credentials) and ``GET /resource`` (bearer-protected)."""

    def __init__(self, tls=None):
        self.lock = threading.Lock()
        self.token_hits = 0
        self.resource_hits = 0
        self.expires_in = 300
        self.delay = 0.0
        self.fail_next = 0  # answer this many token requests with 500
        self.fail_status = 500
        self.refuse = None  # e.g. (401, "invalid_client"): every token request refused
        self.issued: dict[str, float] = {}
        self.revoked: set[str] = set()
        self.always_invalid = False
        self.forms: list[dict] = []
        self.peer_certs: list = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, status, payload, headers=()):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                with server.lock:
                    server.token_hits += 1
                    server.forms.append(
                        {**form, "_authorization": self.headers.get("Authorization")}
                    )
                    if hasattr(self.connection, "getpeercert"):
                        server.peer_certs.append(self.connection.getpeercert(binary_form=True))
                    fail = server.fail_next > 0
                    server.fail_next -= 1 if fail else 0
                    number = server.token_hits
                if server.delay:
                    time.sleep(server.delay)
                if fail:
                    return self._send(server.fail_status, {"error": "temporarily_unavailable"})
                if server.refuse:
                    status, error = server.refuse
                    return self._send(status, {"error": error, "error_description": "no"})
                if form.get("grant_type") != "client_credentials":
                    return self._send(400, {"error": "unsupported_grant_type"})
                token = f"tok-{number}-{time.monotonic_ns()}"
                with server.lock:
                    server.issued[token] = time.monotonic() + server.expires_in
                self._send(
                    200,
                    {
                        "access_token": token,
                        "token_type": "Bearer",
                        "expires_in": server.expires_in,
                    },
                    [("Cache-Control", "no-store")],
                )

            def do_GET(self):
                with server.lock:
                    server.resource_hits += 1
                if self.path == "/plain401":  # a 401 that a new token would not fix
                    return self._send(401, {}, [("WWW-Authenticate", 'Bearer realm="x"')])
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ")
                expiry = server.issued.get(token)
                if (
                    server.always_invalid
                    or expiry is None
                    or expiry < time.monotonic()
                    or token in server.revoked
                ):
                    return self._send(
                        401,
                        {"error": "expired"},
                        [("WWW-Authenticate", 'Bearer realm="x", error="invalid_token"')],
                    )
                self._send(200, {"ok": True, "token": token})

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if tls:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.base = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.url = self.base + "/token"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def basic(self, index=-1):
        raw = self.forms[index]["_authorization"].removeprefix("Basic ")
        user, _, password = base64.b64decode(raw).decode().partition(":")
        return unquote_plus(user), unquote_plus(password)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = TokenServer()
    yield s
    s.stop()


@pytest.fixture
def managers():
    made = []

    def make(server, **kwargs):
        kwargs.setdefault("client_id", "ads")
        kwargs.setdefault("client_secret", SECRET)
        kwargs.setdefault("backoff_initial", 0.05)
        manager = TokenManager(server.url, **kwargs)
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.close()


def test_first_use_fetches_with_client_secret_basic(server, managers):
    manager = managers(server, scope=["users:read", "users:notify"], resource="https://users")
    assert server.token_hits == 0  # nothing before first use
    token = manager.token()
    assert token.startswith("tok-1-")
    assert server.basic() == ("ads", SECRET)
    form = server.forms[0]
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "users:read users:notify"
    assert form["resource"] == "https://users"
    assert "client_secret" not in form


def test_client_secret_post(server, managers):
    managers(server, auth_method="client_secret_post").token()
    form = server.forms[0]
    assert (form["client_id"], form["client_secret"], form["_authorization"]) == (
        "ads",
        SECRET,
        None,
    )


def test_one_fetch_for_50_calls_from_8_threads(server, managers):
    server.delay = 0.2
    manager = managers(server)
    barrier = threading.Barrier(8)
    seen, errors = [], []

    def work():
        barrier.wait()
        for _ in range(50):
            try:
                seen.append(manager.token())
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    assert len(seen) == 400 and len(set(seen)) == 1
    assert server.token_hits == 1
    assert manager.fetch_count == 1


def test_refreshes_in_the_background_before_expiry(server, managers):
    server.expires_in = 2
    manager = managers(server, refresh_at=0.5)
    first = manager.token()
    time.sleep(0.5)
    assert manager.token() == first
    assert server.token_hits == 1
    deadline = time.monotonic() + 3
    while server.token_hits < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.token_hits == 2  # at ~1 s, not at expiry, without a caller waiting
    # The server counts the request before the refresher has stored its answer: wait
    # for the refresher (no caller involved), then the caller gets it without waiting.
    deadline = time.monotonic() + 3
    while manager._token is not None and manager._token.value == first:
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    second = manager.token()
    assert server.token_hits == 2  # served what the refresher stored: no fetch on this path
    assert second != first
    # ... and again for the next token: the refresher keeps going.
    deadline = time.monotonic() + 3
    while server.token_hits < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.token_hits == 3


def test_transient_failures_are_retried_with_backoff(server, managers):
    server.fail_next = 2
    manager = managers(server, backoff_initial=0.1)
    started = time.monotonic()
    assert manager.token().startswith("tok-3-")
    elapsed = time.monotonic() - started
    assert server.token_hits == 3 and manager.fetch_count == 3
    assert elapsed >= 0.05 + 0.1  # jitter keeps each delay within [ceiling/2, ceiling]
    assert elapsed < 2


@pytest.mark.parametrize("status", [429, 502, 503])
def test_retryable_statuses(server, managers, status):
    server.fail_next, server.fail_status = 1, status
    assert managers(server).token()
    assert server.token_hits == 2


def test_persistent_outage_gives_up_after_max_attempts(server, managers):
    server.fail_next = 100
    manager = managers(server, max_attempts=3)
    with pytest.raises(TokenEndpointError) as info:
        manager.token()
    assert info.value.retryable and info.value.status == 500
    assert server.token_hits == 3


def test_unreachable_endpoint_is_a_clean_error(managers):
    dead = TokenServer()
    dead.stop()
    manager = managers(dead, max_attempts=2)
    with pytest.raises(TokenEndpointError) as info:
        manager.token()
    assert info.value.error == "connection_failed"
    assert manager.fetch_count == 2


def test_permanent_refusal_is_not_retried(server, managers):
    server.refuse = (401, "invalid_client")
    manager = managers(server)
    with pytest.raises(TokenEndpointError) as info:
        manager.token()
    assert info.value.error == "invalid_client"
    assert info.value.status == 401
    assert not info.value.retryable
    assert "invalid_client" in str(info.value)
    assert server.token_hits == 1
    with pytest.raises(TokenEndpointError):
        manager.token()
    assert server.token_hits == 2  # one attempt per call, never a retry loop
    time.sleep(0.3)
    assert server.token_hits == 2  # and nothing in the background


def test_waiting_threads_share_a_failed_fetch(server, managers):
    server.refuse = (400, "invalid_scope")
    server.delay = 0.3
    manager = managers(server)
    barrier = threading.Barrier(8)
    errors = []

    def work():
        barrier.wait()
        try:
            manager.token()
        except TokenEndpointError as exc:
            errors.append(exc.error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == ["invalid_scope"] * 8
    assert server.token_hits == 1


def test_invalid_token_response_is_refused(server, managers, monkeypatch):
    manager = managers(server)
    server.refuse = None
    monkeypatch.setattr(server, "expires_in", -5)
    with pytest.raises(TokenEndpointError) as info:
        manager.token()
    assert info.value.error == "invalid_response"


def test_environment_proxy_and_ca_are_ignored(server, managers, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    assert managers(server, max_attempts=1).token()


def test_configuration_errors():
    with pytest.raises(ValueError):
        TokenManager("http://x/token", client_id="a")  # no secret for client_secret_basic
    with pytest.raises(ValueError):
        TokenManager("http://x/token", client_id="a", auth_method="tls_client_auth")
    with pytest.raises(ValueError):
        TokenManager("http://x/token", client_id="a", client_secret="s", auth_method="magic")
    with pytest.raises(ValueError):
        TokenManager("http://x/token", client_id="a", client_secret="s", refresh_at=1.5)


# ------------------------------------------------------------------------ BearerTokenAuth


def test_bearer_auth_refreshes_once_on_invalid_token(server, managers):
    manager = managers(server)
    client = ServiceClient(server.base, auth=BearerTokenAuth(manager))
    first = client.get("/resource")
    assert first.status_code == 200 and server.token_hits == 1
    server.revoked.add(first.json()["token"])
    second = client.get("/resource")
    assert second.status_code == 200
    assert second.json()["token"] != first.json()["token"]
    assert [r.status_code for r in second.history] == [401]
    assert server.token_hits == 2
    assert client.get("/resource").status_code == 200
    assert server.token_hits == 2


def test_bearer_auth_retries_only_once(server, managers):
    server.always_invalid = True
    manager = managers(server)
    client = ServiceClient(server.base, auth=BearerTokenAuth(manager))
    response = client.get("/resource")
    assert response.status_code == 401
    assert server.resource_hits == 2
    assert server.token_hits == 2


def test_bearer_auth_does_not_retry_other_401s(server, managers):
    manager = managers(server)
    client = ServiceClient(server.base, auth=BearerTokenAuth(manager))
    response = client.get("/plain401")
    assert response.status_code == 401
    assert server.resource_hits == 1
    assert server.token_hits == 1


# ------------------------------------------------------------------------ other methods


def test_private_key_jwt_assertion(server, managers, ca):
    issued = ca.issue("ads")
    manager = managers(
        server,
        client_secret=None,
        auth_method="private_key_jwt",
        cert=(issued.cert_path, issued.key_path),
    )
    manager.token()
    form = server.forms[0]
    assert form["client_assertion_type"] == (
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    )
    assertion = form["client_assertion"]
    header = unverified_header(assertion)
    chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in header["x5c"]]
    assert chain[0] == ca.load_certificate("ads") and len(chain) == 2
    claims = verify(
        assertion,
        chain[0].public_key(),
        audience=server.url,
        issuer="ads",
        subject="ads",
        max_lifetime=60,
        require=("exp", "iat", "jti"),
    ).claims
    assert claims["exp"] - claims["iat"] == 60
    manager.invalidate()
    manager.token()
    assert server.forms[1]["client_assertion"] != assertion  # fresh jti, never replayed


def test_tls_client_auth_presents_the_certificate(ca, managers):
    issued_server = ca.issue("tokenhost")
    client_cert = ca.issue("ads")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued_server.cert_path, issued_server.key_path)
    context.load_verify_locations(ca.ca_path)
    context.verify_mode = ssl.CERT_REQUIRED
    tls_server = TokenServer(tls=context)
    try:
        manager = managers(
            tls_server,
            client_secret=None,
            auth_method="tls_client_auth",
            cert=(client_cert.cert_path, client_cert.key_path),
            ca_bundle=ca.ca_path,
        )
        manager.token()
        assert tls_server.forms[0]["client_id"] == "ads"
        presented = x509.load_der_x509_certificate(tls_server.peer_certs[0])
        assert presented == ca.load_certificate("ads")
    finally:
        tls_server.stop()


def test_tls_server_not_under_our_ca_is_refused(ca, rogue_ca, managers):
    rogue = rogue_ca.issue("tokenhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(rogue.cert_path, rogue.key_path)
    tls_server = TokenServer(tls=context)
    try:
        manager = managers(tls_server, ca_bundle=ca.ca_path, max_attempts=1)
        with pytest.raises(TokenEndpointError):
            manager.token()
        assert tls_server.token_hits == 0
    finally:
        tls_server.stop()


# --------------------------------------------------------------------------- fork safety


def _child_token(manager, queue):
    try:
        started = time.monotonic()
        token = manager.token()
        queue.put(("ok", token, manager.fetch_count, time.monotonic() - started))
    except Exception as exc:  # pragma: no cover - reported by the parent
        queue.put(("error", repr(exc), 0, 0))


def test_fork_during_a_fetch_does_not_deadlock_the_child(server, managers):
    server.delay = 1.0
    manager = managers(server)
    parent = threading.Thread(target=manager.token)
    parent.start()
    deadline = time.monotonic() + 5
    while server.token_hits == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert manager._fetching  # the parent's lock/flight state is "busy" right now
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_token, args=(manager, queue), daemon=True)
    child.start()
    try:
        status, token, child_fetches, _ = queue.get(timeout=10)
    finally:
        child.join(5)
        if child.is_alive():  # deadlocked: don't leave it behind
            child.kill()
    parent.join(10)
    assert status == "ok", token
    assert child.exitcode == 0
    assert server.token_hits == 2  # the child fetched its own
    assert child_fetches == 2  # the parent's attempt (inherited count) + its own
    assert token != manager.token()


def test_forked_child_keeps_a_valid_token_but_not_the_connection(server, managers):
    manager = managers(server)
    token = manager.token()
    parent_session = manager._session

    def child(queue):
        reused = manager.token()
        fresh_session = manager._session is None
        manager.invalidate()
        new = manager.token()
        queue.put((reused, fresh_session, new, manager._session is not parent_session))

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    process = ctx.Process(target=child, args=(queue,), daemon=True)
    process.start()
    try:
        reused, fresh_session, new, own_session = queue.get(timeout=10)
    finally:
        process.join(5)
        if process.is_alive():
            process.kill()
    assert reused == token
    assert fresh_session and own_session
    assert new != token
    assert server.token_hits == 2
    assert manager.token() == token  # the parent is unaffected


# ------------------------------------------------------------------------------ logging


def test_secret_and_tokens_never_logged(server, managers, caplog):
    caplog.set_level(logging.DEBUG)
    server.fail_next = 1
    manager = managers(server)
    client = ServiceClient(server.base, auth=BearerTokenAuth(manager))
    first = client.get("/resource").json()["token"]
    server.revoked.add(first)
    second = client.get("/resource").json()["token"]
    server.refuse = (401, "invalid_client")
    manager.invalidate()
    with pytest.raises(TokenEndpointError) as info:
        manager.token()
    assert "token obtained for client_id=ads" in caplog.text
    assert "retrying" in caplog.text
    text = caplog.text + repr(manager) + str(info.value)
    for value in (SECRET, first, second, base64.b64encode(f"ads:{SECRET}".encode()).decode()):
        assert value not in text
    from urllib.parse import quote_plus

    assert quote_plus(SECRET) not in text
