"""The principal cache across processes: UserService under gunicorn with several
workers (GUNICORN_WORKERS, 2 by default), each with its own cache, while another
process changes a principal.

Every worker has the principal cached (many calls, each on a fresh connection, so
that they land on every worker); then a management command (another process, whose
signal bumps the shared version), or a plain ``QuerySet.update()`` that sends no
signal at all, changes it. Within ``PRINCIPAL_CACHE_SECONDS`` (2 s by default) plus
some slack for the command itself, every call on a fresh connection must see the
change, whichever worker answers it.
"""

from __future__ import annotations

import time

import pytest
import requests

from s2s_auth.conf import DEFAULTS
from s2s_auth.core.ca import CertificateAuthority
from tests.live import live_deployment

PREVIEWS = "/api/v1/users/previews?ids=1,2"
#: The documented bound, and slack for a loaded machine.
BOUND = float(DEFAULTS["PRINCIPAL_CACHE_SECONDS"])
SLACK = 1.5
#: Calls on fresh connections: enough for every worker to answer some.
CALLS = 30


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    with live_deployment(tmp_path_factory.mktemp("cache-live"), ("users",)) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def ca(users):
    return CertificateAuthority(users.pki_dir, "fleamarket.local")


def call(users, cert) -> tuple[int, str]:
    """One call on a connection of its own: (status, reason code or "")."""
    with requests.Session() as session:
        session.trust_env = False
        response = session.get(
            users.url("users") + PREVIEWS,
            cert=cert,
            verify=str(users.pki_dir / "ca.pem"),
            headers={"Connection": "close"},
            timeout=10,
        )
    code = response.json().get("error", "") if response.status_code != 200 else ""
    return response.status_code, code


def calls(users, cert, n: int = CALLS) -> set[tuple[int, str]]:
    return {call(users, cert) for _ in range(n)}


def after_the_bound(users, cert, changed_at: float) -> set[tuple[int, str]]:
    """Keep calling until the bound has passed (the workers keep their caches warm),
    then the answers of CALLS fresh calls."""
    while time.monotonic() < changed_at + BOUND + SLACK:
        call(users, cert)
    return calls(users, cert)


def principal(users, ca, name: str, *scopes: str) -> tuple[str, str]:
    issued = ca.issue(name)
    args = [arg for scope in scopes for arg in ("--scope", scope)]
    users.manage("users", "s2s_service", "add", name, *args, "--no-secret")
    return str(issued.cert_path), str(issued.key_path)


def orm_update(users, name: str, **fields) -> None:
    """A change that sends no signal, from another process."""
    code = (
        "from s2s_auth.models import ServicePrincipal; "
        f"ServicePrincipal.objects.filter(name={name!r}).update(**{fields!r})"
    )
    users.manage("users", "shell", "-c", code)


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ("disable", (403, "principal_disabled")),
        ("revoke", (403, "insufficient_scope")),
        ("update_disabled", (403, "principal_disabled")),
        ("update_scopes", (403, "insufficient_scope")),
    ],
)
def test_every_worker_sees_a_change_within_the_bound(users, ca, change, refusal):
    name = f"cache-{change.replace('_', '-')}"
    cert = principal(users, ca, name, "users:read")
    assert calls(users, cert) == {(200, "")}  # cached by every worker from here on
    if change == "disable":
        users.manage("users", "s2s_service", "disable", name)
    elif change == "revoke":
        users.manage("users", "s2s_service", "revoke", name, "users:read")
    elif change == "update_disabled":
        orm_update(users, name, enabled=False)
    else:
        orm_update(users, name, scopes="")
    assert after_the_bound(users, cert, time.monotonic()) == {refusal}


def test_a_new_principal_is_served_within_the_bound_though_unknown_was_cached(users, ca):
    issued = ca.issue("cache-newcomer")
    cert = (str(issued.cert_path), str(issued.key_path))
    assert calls(users, cert) == {(403, "unknown_principal")}  # cached as unknown
    users.manage("users", "s2s_service", "add", "cache-newcomer", "--scope", "users:read")
    assert after_the_bound(users, cert, time.monotonic()) == {(200, "")}


def test_reenabling_is_seen_too(users, ca):
    cert = principal(users, ca, "cache-reenabled", "users:read")
    users.manage("users", "s2s_service", "disable", "cache-reenabled")
    assert after_the_bound(users, cert, time.monotonic()) == {(403, "principal_disabled")}
    users.manage("users", "s2s_service", "enable", "cache-reenabled")
    assert after_the_bound(users, cert, time.monotonic()) == {(200, "")}
