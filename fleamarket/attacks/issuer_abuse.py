"""Attacks on the identity service's open doors: registration squatting and lock-out.

Both send from other loopback addresses (``127.0.0.0/8`` all reaches the service), so
the attacker is *someone else* to the per-address counters, and the run's own token
requests from 127.0.0.1 are not held back afterwards.
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import secrets
import ssl
from urllib.parse import urlencode, urlsplit

from s2s_auth.client.token_manager import TokenEndpointError, TokenManager

from .results import Probe

#: Failed Basic authentications the lock-out attack sends: more than the per-client (10)
#: and per-address (60) limits a minute.
FAILED_ATTEMPTS = 70
REGISTER = "/api/v1/account/register/service"


def other_address() -> str:
    """A loopback address other than 127.0.0.1 (a fresh one per call)."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(2, 254)}"  # noqa: S311


def post(url: str, body: bytes, headers: dict, *, ca_file: str, source: str) -> tuple[int, dict]:
    """POST from ``source`` (a loopback address); the status and the JSON answer."""
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=ca_file)
    conn = http.client.HTTPSConnection(
        parts.hostname, parts.port, context=context, timeout=10, source_address=(source, 0)
    )
    try:
        conn.request("POST", parts.path, body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        data = json.loads(raw)
    except ValueError:
        data = {}
    return response.status, data if isinstance(data, dict) else {}


def _refusal(label: str, status: int, data: dict, *, ok_status: int) -> Probe:
    return Probe(label, status == ok_status, status, str(data.get("error", "")))


def registration_squat(lab) -> list[Probe]:
    """Register a name before the operator adds it (closed, then open), then the
    operator's ``s2s_service add NAME --scope users:read`` and the squatter's token."""
    name = f"squat-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(24)
    body = json.dumps({"serviceName": name, "password": password}).encode()
    headers = {"Content-Type": "application/json"}
    status, data = post(
        lab.url(REGISTER), body, headers, ca_file=lab.ca_file, source=other_address()
    )
    probes = [
        _refusal(f"register {name} (registration closed: the default)", status, data, ok_status=201)
    ]
    open_url = lab.url(REGISTER, keyserver=True)
    status, data = post(open_url, body, headers, ca_file=lab.ca_file, source=other_address())
    if status != 201:
        raise RuntimeError(f"registration on the open UserService answered {status} {data}")
    try:
        result = lab.deployment.manage("users", "s2s_service", "add", name, "--scope", "users:read")
        output = result.stdout
    except RuntimeError as exc:  # the command refused
        output = str(exc)
    granted = "scopes: users:read" in output
    reason = "scope_granted" if granted else "approval_required"
    probes.append(
        Probe(
            f"operator runs s2s_service add {name} --scope users:read after the squatter",
            granted,
            "cli",
            reason,
            output.strip().splitlines()[-1][:160] if output.strip() else "",
        )
    )
    manager = TokenManager(
        lab.url("/oauth/token", keyserver=True),
        client_id=name,
        client_secret=password,
        scope="users:read",
        ca_bundle=lab.ca_file,
        max_attempts=1,
    )
    label = "the squatter's password asks for users:read"
    try:
        manager.token()
        probes.append(Probe(label, True, 200, "token_issued"))
    except TokenEndpointError as exc:
        probes.append(Probe(label, False, exc.status or "token endpoint", exc.error))
    finally:
        manager.close()
    return probes


def lockout(lab) -> list[Probe]:
    """``FAILED_ATTEMPTS`` times ``Basic worker:wrong`` from another address, then the real
    worker's own token requests (certificate, then private_key_jwt)."""
    source = other_address()
    basic = base64.b64encode(b"worker:wrong").decode()
    body = urlencode({"grant_type": "client_credentials", "scope": "users:read"}).encode()
    headers = {
        "Authorization": f"Basic {basic}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    statuses: dict[int, int] = {}
    for _ in range(FAILED_ATTEMPTS):
        status, _ = post(lab.url("/oauth/token"), body, headers, ca_file=lab.ca_file, source=source)
        statuses[status] = statuses.get(status, 0) + 1
    if any(status < 400 for status in statuses):
        raise RuntimeError(f"a wrong password got a token: {statuses}")
    flood = ", ".join(f"{n} x {s}" for s, n in sorted(statuses.items()))
    probes = []
    for method in ("tls_client_auth", "private_key_jwt"):
        issued = lab.token_request(lab.worker, "worker", method, "users:read")
        probes.append(
            Probe(
                f"after {FAILED_ATTEMPTS} Basic worker:wrong from {source} ({flood}): "
                f"the real worker, {method}",
                not issued.accepted,  # the attacker wins if the real client is locked out
                issued.status,
                "client_served" if issued.accepted else f"locked_out: {issued.reason}",
            )
        )
    return probes


__all__ = ["lockout", "other_address", "post", "registration_squat"]
