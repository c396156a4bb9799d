"""The benchmark cases: what is sent, to which server, and what it is compared with.

Every HTTP case hits UserService's tiny JSON endpoint: ``/api/v1/ping`` (``PingView``,
open) or ``/api/v1/service-ping`` (``ServicePingView``: same JSON, needs an
authenticated service with ``users:read``; every accepted request writes its audit
record). A case presents exactly one credential, so that its mechanism is the one
``S2S_AUTH["MECHANISMS"]`` picks.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlencode

from .load import ClientSpec
from .servers import CLIENT, Fleet

PING = "/api/v1/ping"
SERVICE_PING = "/api/v1/service-ping"
NEARBY = "/api/v1/ads/nearby?lat=52.52&lon=13.405&radius_km=10"
USERS_SPIFFE = "spiffe://fleamarket.local/service/users"
TOKEN_FORM = {"scope": "users:read", "resource": "users"}
BASELINE = "plain_http"
#: ads' deals of the signed-in end user: needs an end user's access token, verified
#: with users' JWKS (fetched over HTTPS).
DEALS = "/api/v1/deals/"


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    server: str  # a servers.SERVER_KINDS entry
    group: str
    #: Another case this one is compared with as well ("vs" column), besides the baseline.
    versus: str | None = None
    #: "http" (load driver), "micro" (in-process) or "cold" (the server is started
    #: while the clients knock: ``options["service"]`` of the case's server).
    kind: str = "http"
    unit: str = "req/s"
    notes: str = ""
    options: dict = field(default_factory=dict, hash=False, compare=False)


CASES: list[Case] = [
    Case(BASELINE, "plain HTTP, no auth (PingView): baseline", "plain", "transport"),
    Case("https", "HTTPS one-way TLS, no auth (PingView)", "tls", "transport", BASELINE),
    Case(
        "mtls_transport",
        "mTLS handshake, no auth (PingView, client cert presented)",
        "tls",
        "transport",
        "https",
    ),
    Case("mtls", "mTLS (ServicePingView, mechanism mtls)", "tls", "mechanism", "https"),
    Case("api_key", "API key over HTTPS", "tls", "mechanism", "https"),
    Case(
        "service_jwt_mtls",
        "service JWT per request over mTLS (audit: SQLite)",
        "tls",
        "mechanism",
        "mtls",
    ),
    Case(
        "service_jwt_x5c",
        "service JWT per request, x5c over one-way TLS",
        "tls",
        "mechanism",
        "https",
    ),
    Case(
        "access_token",
        "access token, verification cache on (audit: SQLite)",
        "tls",
        "mechanism",
        "https",
    ),
    Case(
        "access_token_nocache",
        "access token, verification cache off",
        "nocache",
        "mechanism",
        "access_token",
    ),
    Case("http_signature", "RFC 9421 signed request over mTLS", "tls", "mechanism", "mtls"),
    Case(
        "bound_token",
        "certificate-bound access token over mTLS",
        "tls",
        "mechanism",
        "mtls",
    ),
    Case(
        "service_jwt_mtls_pg",
        "service JWT per request over mTLS (audit: PostgreSQL)",
        "pg",
        "audit",
        "service_jwt_mtls",
    ),
    Case(
        "access_token_pg",
        "access token, cache on (audit: PostgreSQL)",
        "pg",
        "audit",
        "access_token",
    ),
    # The audit write modes (S2S_AUDIT_WRITE): the default group_commit answers after the
    # record's commit; background writes reads' and refusals' records from a thread.
    Case(
        "mtls_bg",
        "mTLS (mechanism mtls), audit written in the background",
        "background",
        "audit write mode",
        "mtls",
    ),
    Case(
        "service_jwt_mtls_bg",
        "service JWT per request over mTLS, audit written in the background",
        "background",
        "audit write mode",
        "service_jwt_mtls",
    ),
    Case(
        "access_token_bg",
        "access token, cache on, audit written in the background",
        "background",
        "audit write mode",
        "access_token",
    ),
    # The database on its own core (bench.affinity): PostgreSQL's backends of the bench
    # database on the last usable CPU, the server and the clients on the others; the
    # pinned baseline runs on the same CPUs without a database.
    Case(
        "plain_http_pinned",
        "plain HTTP, no auth, server + clients on the application CPUs",
        "plain",
        "database on its own core",
        BASELINE,
        options={"pin": True},
    ),
    Case(
        "service_jwt_mtls_pg_pinned",
        "service JWT over mTLS (audit: PostgreSQL on its own core)",
        "pg",
        "database on its own core",
        "plain_http_pinned",
        options={"pin": True},
    ),
    Case(
        "access_token_pg_pinned",
        "access token, cache on (audit: PostgreSQL on its own core)",
        "pg",
        "database on its own core",
        "plain_http_pinned",
        options={"pin": True},
    ),
    Case(
        "token_client_secret_basic",
        "token endpoint: client_secret_basic",
        "tls",
        "token endpoint",
        unit="tokens/s",
    ),
    Case(
        "token_client_secret_post",
        "token endpoint: client_secret_post",
        "tls",
        "token endpoint",
        "token_client_secret_basic",
        unit="tokens/s",
    ),
    Case(
        "token_private_key_jwt",
        "token endpoint: private_key_jwt",
        "tls",
        "token endpoint",
        "token_client_secret_basic",
        unit="tokens/s",
    ),
    Case(
        "token_tls_client_auth",
        "token endpoint: tls_client_auth (mTLS)",
        "tls",
        "token endpoint",
        "token_client_secret_basic",
        unit="tokens/s",
    ),
    Case(
        "handshake_full",
        "new mTLS connection per request: full handshake",
        "tls",
        "handshake",
        "mtls_transport",
        unit="conn/s",
    ),
    Case(
        "handshake_resumed",
        "new mTLS connection per request: resumed session",
        "tls",
        "handshake",
        "handshake_full",
        unit="conn/s",
    ),
    Case(
        "nearby_plain",
        "ads nearby → users previews, plain HTTP, no s2s auth",
        "plain",
        "end to end",
    ),
    Case(
        "nearby_s2s",
        "ads nearby → users previews, HTTPS + service JWT over mTLS",
        "tls",
        "end to end",
        "nearby_plain",
    ),
    Case(
        "cold_issuer",
        "cold start of users (the issuer), hit at once with access tokens",
        "tls",
        "cold start",
        kind="cold",
        options={"service": "users"},
    ),
    Case(
        "cold_resource",
        "cold start of ads (resource server, JWKS over HTTPS), hit at once with end users' tokens",
        "tls",
        "cold start",
        kind="cold",
        options={"service": "ads"},
    ),
    Case(
        "validate_cached",
        "validate_access_token in-process, cache on",
        "tls",
        "in-process",
        kind="micro",
        unit="validations/s",
    ),
    Case(
        "validate_uncached",
        "validate_access_token in-process, cache off",
        "tls",
        "in-process",
        "validate_cached",
        kind="micro",
        unit="validations/s",
    ),
]
BY_KEY = {case.key: case for case in CASES}


def select(names: str | None) -> list[Case]:
    """The cases named (comma separated; a group name selects its cases), all by default.

    The baseline always runs: every figure is a ratio to it.
    """
    if not names:
        return list(CASES)
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    unknown = wanted - set(BY_KEY) - {case.group for case in CASES}
    if unknown:
        raise ValueError(
            f"unknown case(s): {', '.join(sorted(unknown))}; known: {', '.join(BY_KEY)}"
        )
    return [c for c in CASES if c.key in wanted or c.group in wanted or c.key == BASELINE]


# -- building a case's client ---------------------------------------------------------------


def _fetch_token(fleet: Fleet, server, *, bound: bool) -> str:
    """A client-credentials token from ``server``'s issuer: client_secret_basic, or
    tls_client_auth (a certificate-bound token)."""
    spec = client_spec(fleet, server, "token_tls" if bound else "token_basic")
    from .load import _Connection, request_factory

    headers, body = request_factory(spec)()
    status, data = _Connection(spec).send(headers, body)
    if status != 200:
        raise RuntimeError(f"token request to {server.kind} answered {status}: {data[:300]!r}")
    return json.loads(data)["access_token"]


def client_spec(fleet: Fleet, server, auth: str, **overrides) -> ClientSpec:
    ca, cert, key = fleet.client_files()
    secret, api_key = fleet.secrets_for(server)
    spec = ClientSpec(
        host="127.0.0.1",
        port=server.port("users"),
        path=SERVICE_PING,
        tls=server.tls,
        ca=ca,
        cert=cert,
        key=key,
        auth=auth,
        client_id=CLIENT,
        audience=USERS_SPIFFE,
    )
    if auth in ("token_basic", "token_post", "token_tls", "token_private_key_jwt"):
        spec.method = "POST"
        spec.path = "/oauth/token"
        spec.form = dict(TOKEN_FORM)
        spec.secret = secret
        spec.present_cert = auth == "token_tls"
        spec.audience = f"{server.origin('users')}/oauth/token"
    if auth == "api_key":
        spec.secret = api_key
    for name, value in overrides.items():
        setattr(spec, name, value)
    return spec


def build(case: Case, fleet: Fleet) -> ClientSpec:
    """The client of an HTTP case (tokens are fetched now, just before the case runs)."""
    server = fleet.servers[case.server]
    k = case.key
    if k in (BASELINE, "https", "plain_http_pinned"):
        return client_spec(fleet, server, "none", path=PING)
    if k == "mtls_transport":
        return client_spec(fleet, server, "none", path=PING, present_cert=True)
    if k in ("mtls", "mtls_bg"):
        return client_spec(fleet, server, "none", present_cert=True)
    if k == "api_key":
        return client_spec(fleet, server, "api_key")
    if k.startswith("service_jwt_mtls"):
        return client_spec(fleet, server, "service_jwt", present_cert=True)
    if k == "service_jwt_x5c":
        return client_spec(fleet, server, "service_jwt", send_x5c=True)
    if k.startswith("access_token"):
        return client_spec(fleet, server, "bearer", secret=_fetch_token(fleet, server, bound=False))
    if k == "bound_token":
        token = _fetch_token(fleet, server, bound=True)
        return client_spec(fleet, server, "bearer", secret=token, present_cert=True)
    if k == "http_signature":
        return client_spec(fleet, server, "http_signature", present_cert=True)
    if k.startswith("token_"):
        auth = {
            "token_client_secret_basic": "token_basic",
            "token_client_secret_post": "token_post",
            "token_private_key_jwt": "token_private_key_jwt",
            "token_tls_client_auth": "token_tls",
        }[k]
        return client_spec(fleet, server, auth)
    if k.startswith("handshake_"):
        mode = k.removeprefix("handshake_")
        return client_spec(fleet, server, "none", path=PING, present_cert=True, new_connection=mode)
    if k == "cold_issuer":
        token = _fetch_token(fleet, server, bound=False)
        return client_spec(fleet, server, "bearer", secret=token, cold=True)
    if k == "cold_resource":
        return ClientSpec(
            host="127.0.0.1",
            port=server.port("ads"),
            path=DEALS,
            tls=True,
            ca=fleet.client_files()[0],
            auth="bearer",
            secret=end_user_token(fleet, server),
            cold=True,
        )
    if k.startswith("nearby_"):
        return ClientSpec(
            host="127.0.0.1",
            port=server.port("ads"),
            path=NEARBY,
            tls=server.tls,
            ca=fleet.client_files()[0],
            # Both configurations: users answered, so the previews are fresh, not the
            # stored ones (in ``plain`` users serves previews without authentication).
            expect_body=b'"stale":false',
        )
    raise ValueError(f"no client for case {k}")


def end_user_token(fleet: Fleet, server) -> str:
    """An end user's access token from ``server``'s users (``POST /api/v1/auth/login``)."""
    username, password = fleet.end_user
    context = ssl.create_default_context(cafile=fleet.client_files()[0])
    conn = http.client.HTTPSConnection("127.0.0.1", server.port("users"), context=context)
    try:
        body = json.dumps({"username": username, "password": password})
        conn.request("POST", "/api/v1/auth/login", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"login at {server.kind} answered {response.status}: {data[:300]!r}")
    return json.loads(data)["access_token"]


def nearby_sellers_present(fleet: Fleet, server) -> bool:
    """Whether ads' nearby answer carries fresh seller previews (users answered ads'
    call; not the previews stored on the ads)."""
    context = None
    if server.tls:
        context = ssl.create_default_context(cafile=fleet.client_files()[0])
        conn = http.client.HTTPSConnection("127.0.0.1", server.port("ads"), context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", server.port("ads"))
    try:
        conn.request("GET", NEARBY)
        body = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    results = body.get("results") or []
    return bool(results) and all(
        (item.get("seller") or {}).get("stale") is False for item in results
    )


def token_for_micro(fleet: Fleet) -> str:
    return _fetch_token(fleet, fleet.servers["tls"], bound=False)


__all__ = ["BASELINE", "BY_KEY", "CASES", "Case", "build", "select", "urlencode"]
