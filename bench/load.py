"""The load driver: closed-loop client processes, each with one connection.

Every client process builds its credentials and its connection first, reports ready,
then waits for the common start signal. It sends requests back to back (keep-alive,
or a new TLS connection per request for the handshake cases) until the common end
time; requests that complete inside the measured window ``[start, end]`` are counted
and their latencies kept. Before ``start`` (the warm-up) nothing is counted.

The clients are deliberately lean (``http.client``, no ``requests`` machinery per
request, no proxy/CA environment): they share the CPU with the server. What a real
client has to do per request is included: minting a service JWT, signing an
RFC 9421 request, building a private_key_jwt assertion.
"""

from __future__ import annotations

import base64
import http.client
import importlib
import json
import multiprocessing
import socket
import ssl
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from .stats import latency_figures

#: Request authentications a client can add (``ClientSpec.auth``).
AUTH_KINDS = (
    "none",
    "api_key",
    "bearer",
    "service_jwt",
    "http_signature",
    "token_basic",
    "token_post",
    "token_private_key_jwt",
    "token_tls",
)


@dataclass
class ClientSpec:
    """What one client process sends, over which connection."""

    host: str
    port: int
    path: str
    tls: bool = False
    ca: str | None = None
    #: Client certificate chain and key: presented in the TLS handshake (mTLS) when
    #: ``present_cert``, and/or used to sign (service JWT, signatures, assertions).
    cert: str | None = None
    key: str | None = None
    present_cert: bool = False
    method: str = "GET"
    auth: str = "none"
    #: API key, bearer token or client secret, depending on ``auth``.
    secret: str = field(default="", repr=False)
    client_id: str = ""
    #: Service JWT ``aud`` (a SPIFFE ID), or the token endpoint URL for assertions.
    audience: str = ""
    send_x5c: bool = False
    #: Token request parameters (scope, resource).
    form: dict[str, str] = field(default_factory=dict)
    #: None: keep-alive. "full": a new TLS connection (full handshake) per request;
    #: "resumed": a new connection per request resuming the previous TLS session.
    new_connection: str | None = None
    expect_status: int = 200
    #: A byte string the response body must contain (e.g. a non-null seller).
    expect_body: bytes | None = None
    #: Cold start: the server is not running when the clients are ready; each connects
    #: as soon as the port accepts and counts every answer (2xx or not) for
    #: ``duration`` seconds from its first one.
    cold: bool = False


#: How long a cold-start client keeps trying to connect before it gives up.
COLD_CONNECT_SECONDS = 60.0


def _ensure_django_settings() -> None:
    """s2s_auth's client helpers import DRF, which wants configured settings; a load
    generator is no Django project, so give it bare ones."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            S2S_AUTH={},
            USE_TZ=True,
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "s2s_auth"],
        )
        django.setup()


def preload() -> None:
    """Import what the clients use once, before forking them."""
    _ensure_django_settings()
    for module in (
        "s2s_auth.client.auth",
        "s2s_auth.core.httpsig",
        "s2s_auth.client.token_manager",
    ):
        importlib.import_module(module)


class _SignableRequest:
    """The minimal request object ``s2s_auth.core.httpsig.sign_request`` signs."""

    def __init__(self, method: str, url: str, body: bytes | None):
        from requests.structures import CaseInsensitiveDict

        self.method = method
        self.url = url
        self.headers = CaseInsensitiveDict()
        self.body = body


def request_factory(spec: ClientSpec):
    """A function returning ``(headers, body)`` for the next request."""
    preload()
    from s2s_auth.client.auth import ServiceCredentials, ServiceJWTAuth, signature_auth
    from s2s_auth.client.token_manager import TokenManager
    from s2s_auth.mechanisms.service_jwt import KEYWORD

    scheme = "https" if spec.tls else "http"
    base_headers = {"Accept": "application/json"}
    if spec.auth == "none":
        return lambda: (base_headers, None)
    if spec.auth == "api_key":
        headers = {**base_headers, "Authorization": f"ApiKey {spec.secret}"}
        return lambda: (headers, None)
    if spec.auth == "bearer":
        headers = {**base_headers, "Authorization": f"Bearer {spec.secret}"}
        return lambda: (headers, None)
    if spec.auth == "service_jwt":
        creds = ServiceCredentials.from_files(spec.cert, spec.key)
        auth = ServiceJWTAuth(creds, audience=spec.audience, send_x5c=spec.send_x5c)

        def service_jwt():
            return {**base_headers, "Authorization": f"{KEYWORD} {auth.token()}"}, None

        return service_jwt
    if spec.auth == "http_signature":
        signer = signature_auth(ServiceCredentials.from_files(spec.cert, spec.key))
        url = f"{scheme}://{spec.host}:{spec.port}{spec.path}"

        def signed():
            request = signer(_SignableRequest(spec.method, url, None))
            return {**base_headers, **request.headers}, None

        return signed
    form_headers = {**base_headers, "Content-Type": "application/x-www-form-urlencoded"}
    form = {"grant_type": "client_credentials", **spec.form}
    if spec.auth == "token_basic":
        pair = f"{quote(spec.client_id, safe='')}:{quote(spec.secret, safe='')}"
        basic = base64.b64encode(pair.encode()).decode()
        headers = {**form_headers, "Authorization": f"Basic {basic}"}
        body = urlencode(form).encode()
        return lambda: (headers, body)
    if spec.auth == "token_post":
        body = urlencode({**form, "client_id": spec.client_id, "client_secret": spec.secret})
        return lambda: (form_headers, body.encode())
    if spec.auth == "token_tls":
        body = urlencode({**form, "client_id": spec.client_id}).encode()
        return lambda: (form_headers, body)
    if spec.auth == "token_private_key_jwt":
        manager = TokenManager(
            spec.audience,
            client_id=spec.client_id,
            cert=(spec.cert, spec.key),
            auth_method="private_key_jwt",
        )

        def assertion():
            fields = {
                **form,
                "client_id": spec.client_id,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": manager.client_assertion(),
            }
            return form_headers, urlencode(fields).encode()

        return assertion
    raise ValueError(f"unknown auth {spec.auth!r}")


def ssl_context(spec: ClientSpec) -> ssl.SSLContext | None:
    if not spec.tls:
        return None
    context = ssl.create_default_context(cafile=spec.ca)
    if spec.present_cert:
        context.load_cert_chain(spec.cert, spec.key)
    return context


class _Connection:
    """One client's connection: keep-alive ``http.client``, or a raw TLS socket per
    request (the handshake cases)."""

    def __init__(self, spec: ClientSpec):
        self.spec = spec
        self.context = ssl_context(spec)
        self.conn: http.client.HTTPConnection | None = None
        self.session: ssl.SSLSession | None = None
        self.resumed = 0
        self.reconnects = 0

    def _open(self) -> http.client.HTTPConnection:
        spec = self.spec
        if spec.tls:
            conn = http.client.HTTPSConnection(
                spec.host, spec.port, context=self.context, timeout=30
            )
        else:
            conn = http.client.HTTPConnection(spec.host, spec.port, timeout=30)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def send(self, headers: dict, body: bytes | None) -> tuple[int, bytes]:
        if self.spec.new_connection:
            return self._send_new_connection(headers, body)
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = self._open()
            try:
                self.conn.request(self.spec.method, self.spec.path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.conn.close()
                    self.conn = None
                return response.status, data
            except (http.client.HTTPException, ConnectionError, ssl.SSLEOFError):
                # The server closed an idle keep-alive connection: open a new one, once.
                self.conn.close()
                self.conn = None
                self.reconnects += 1
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _send_new_connection(self, headers: dict, body: bytes | None) -> tuple[int, bytes]:
        spec = self.spec
        raw = socket.create_connection((spec.host, spec.port), timeout=30)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = self.session if spec.new_connection == "resumed" else None
        with self.context.wrap_socket(raw, server_hostname=spec.host, session=session) as sock:
            lines = [f"{spec.method} {spec.path} HTTP/1.1", f"Host: {spec.host}:{spec.port}"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            lines += ["Connection: close", "", ""]
            sock.sendall("\r\n".join(lines).encode() + (body or b""))
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            if sock.session_reused:
                self.resumed += 1
            self.session = sock.session  # TLS 1.3: the ticket came with the response
        response = b"".join(chunks)
        status = int(response.split(b" ", 2)[1])
        return status, response.partition(b"\r\n\r\n")[2]


def _client(spec: ClientSpec, ready, go, window, results) -> None:
    try:
        make = request_factory(spec)
        conn = _Connection(spec)
        headers, body = make()
        status, data = conn.send(headers, body)  # fail fast on a misconfigured case
        if status != spec.expect_status:
            raise RuntimeError(f"first request answered {status}: {data[:300]!r}")
        ready.put(None)
        go.wait()
        start, end = window[0], window[1]
        latencies: list[float] = []
        count = errors = 0
        first_error = ""
        clock, perf = time.time, time.perf_counter
        while True:
            if clock() >= end:
                break
            t0 = perf()
            headers, body = make()
            status, data = conn.send(headers, body)
            elapsed = perf() - t0
            done = clock()
            ok = status == spec.expect_status and (
                spec.expect_body is None or spec.expect_body in data
            )
            if not ok:
                errors += 1
                if not first_error:
                    first_error = f"HTTP {status}: {data[:300]!r}"
            if ok and start <= done <= end:
                count += 1
                latencies.append(elapsed)
        results.put(
            {
                "count": count,
                "errors": errors,
                "latencies": latencies,
                "resumed": conn.resumed,
                "reconnects": conn.reconnects,
                "first_error": first_error,
            }
        )
    except BaseException as exc:  # report, never hang the parent
        ready.put(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
        results.put({"failed": f"{type(exc).__name__}: {exc}"})


def _reason(data: bytes) -> str:
    """The ``error`` code of an s2s_auth error body, else a short excerpt."""
    try:
        return str(json.loads(data).get("error"))
    except (ValueError, AttributeError):
        return data[:40].decode(errors="replace")


def _cold_client(spec: ClientSpec, ready, go, window, results) -> None:
    """A client of a server that is starting: knock until the port accepts, then send
    back to back for ``window[1]`` seconds from the first answer, counting all answers."""
    try:
        make = request_factory(spec)
        conn = _Connection(spec)
        duration = window[1]
        ready.put(None)
        go.wait()
        give_up = time.time() + COLD_CONNECT_SECONDS
        while True:  # as soon as the port accepts (the handshake waits for a worker)
            try:
                conn.conn = conn._open()
                break
            except OSError:
                if time.time() > give_up:
                    raise
                time.sleep(0.005)
        connected = time.time()
        answers: Counter = Counter()
        latencies: list[float] = []
        count = errors = 0
        first_ok = first_answer = None
        perf = time.perf_counter
        end = None
        while end is None or time.time() < end:
            t0 = perf()
            headers, body = make()
            try:
                status, data = conn.send(headers, body)
            except (OSError, http.client.HTTPException) as exc:
                errors += 1
                answers[f"connection {type(exc).__name__}"] += 1
                conn.conn = None
                time.sleep(0.005)
                continue
            elapsed = perf() - t0
            now = time.time()
            if first_answer is None:
                first_answer, end = now, now + duration
            if 200 <= status < 300:
                count += 1
                latencies.append(elapsed)
                first_ok = first_ok or now
            else:
                errors += 1
                answers[f"{status} {_reason(data)}"] += 1
        results.put(
            {
                "count": count,
                "errors": errors,
                "latencies": latencies,
                "resumed": 0,
                "reconnects": conn.reconnects,
                "first_error": ", ".join(answers),
                "answers": dict(answers),
                "connected_at": connected,
                "first_ok_at": first_ok,
            }
        )
    except BaseException as exc:
        ready.put(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
        results.put({"failed": f"{type(exc).__name__}: {exc}"})


def run_load(
    spec: ClientSpec,
    *,
    clients: int,
    duration: float,
    warmup: float,
    after_go: Callable[[], None] | None = None,
) -> dict:
    """Drive ``clients`` processes against ``spec`` for ``duration`` seconds.

    Cold start (``spec.cold``): no warm-up; ``after_go`` starts the server once the
    clients are knocking, and each client measures ``duration`` seconds from its
    first answer.
    """
    preload()
    ctx = multiprocessing.get_context("fork")
    ready, results = ctx.Queue(), ctx.Queue()
    go = ctx.Event()
    window = ctx.Array("d", 2, lock=False)
    if spec.cold:
        window[1] = duration
    target = _cold_client if spec.cold else _client
    procs = [
        ctx.Process(target=target, args=(spec, ready, go, window, results), daemon=True)
        for _ in range(clients)
    ]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            message = ready.get(timeout=60)
            if message is not None:
                raise RuntimeError(f"a client failed to start: {message}")
        now = time.time()
        if spec.cold:
            window[0] = now
        else:
            window[0], window[1] = now + warmup, now + warmup + duration
        go.set()
        if after_go is not None:
            after_go()
        wait = warmup + duration + 120 + (COLD_CONNECT_SECONDS if spec.cold else 0)
        parts = [results.get(timeout=wait) for _ in procs]
    finally:
        go.set()
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    failed = [p["failed"] for p in parts if "failed" in p]
    if failed:
        raise RuntimeError(f"client failed: {failed[0]}")
    latencies = [x for p in parts for x in p["latencies"]]
    count = sum(p["count"] for p in parts)
    errors = sum(p["errors"] for p in parts)
    extra: dict = {}
    if spec.cold:
        answers: Counter = Counter()
        for part in parts:
            answers.update(part["answers"])
        oks = [p["first_ok_at"] for p in parts if p["first_ok_at"]]
        extra = {
            "non_2xx": errors,
            "answers": dict(answers),
            "first_connect_s": min(p["connected_at"] for p in parts) - now,
            "first_ok_s": (min(oks) - now) if oks else None,
        }
    return {
        "requests": count,
        "errors": errors,
        "rps": count / duration,
        **latency_figures(latencies),
        "resumed": sum(p["resumed"] for p in parts),
        "reconnects": sum(p["reconnects"] for p in parts),
        "first_error": next((p["first_error"] for p in parts if p["first_error"]), ""),
        "clients": clients,
        **extra,
    }
