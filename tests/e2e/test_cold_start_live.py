"""A resource server started cold and hit at once answers no 503 (issue 14).

ads verifies end users' access tokens with users' JWKS, fetched over HTTPS. Started
while users is up and hit by several keep-alive clients as soon as its port accepts,
it answers every request; started while users is down, it answers 503
``jwks_unavailable`` (a reason, never a 500) and recovers soon after users is back,
not after a ``JWKS_MIN_REFETCH_SECONDS`` blackout. The figures (how many, how fast)
are the benchmark's ``cold_*`` cases; here only the behaviour is checked.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.e2e.app import give_password, log_in
from tests.live import live_deployment

# SQLite pass only (.ci/run): the JWKS warm-up and backoff: no database or shared-cache behaviour.
pytestmark = [pytest.mark.live, pytest.mark.single_pass]

DEALS = "/api/v1/deals/"
CLIENTS = 4
#: Well under the 30 s JWKS_MIN_REFETCH_SECONDS a failed fetch used to wait.
RECOVERY_BOUND_SECONDS = 20
#: Answers in a row that show every worker has the keys.
STEADY = 20


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    with live_deployment(tmp_path_factory.mktemp("cold"), workers=2) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def token(deployment) -> str:
    return log_in(deployment, "seller05", give_password(deployment, "seller05")).token


class Clients:
    """``CLIENTS`` threads, each with one keep-alive session carrying ``token``: they
    connect as soon as the port accepts, then send requests back to back until
    ``done()`` says so; every answer is kept as (monotonic time, status, reason)."""

    def __init__(self, deployment, token: str, done, deadline: float = 90.0):
        self.url = deployment.url("ads") + DEALS
        self.ca = str(deployment.pki_dir / "ca.pem")
        self.token = token
        self.done = done
        self.deadline = time.monotonic() + deadline
        self.answers: list[tuple[float, int, str]] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(CLIENTS)]

    def run(self) -> None:
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca
        session.headers["Authorization"] = f"Bearer {self.token}"
        while time.monotonic() < self.deadline and not self.done(self):
            try:
                response = session.get(self.url, timeout=30)
            except requests.ConnectionError:  # not listening yet
                time.sleep(0.01)
                continue
            reason = ""
            if response.status_code != 200:
                try:
                    reason = response.json().get("error", "")
                except ValueError:
                    reason = response.text[:100]
            with self.lock:
                self.answers.append((time.monotonic(), response.status_code, reason))
        session.close()

    def __enter__(self) -> Clients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for thread in self.threads:
            thread.join(timeout=120)

    def oks(self) -> int:
        with self.lock:
            return sum(1 for _, status, _ in self.answers if status == 200)


def test_cold_resource_server_hit_at_once_answers_every_request(deployment, token):
    deployment.stop_service("ads")
    with Clients(deployment, token, done=lambda c: c.oks() >= 100) as clients:
        deployment.start_service("ads")  # the clients are already knocking
    statuses = [(status, reason) for _, status, reason in clients.answers]
    assert len(statuses) >= 100
    assert [s for s in statuses if s[0] != 200] == []


def test_cold_resource_server_recovers_soon_after_its_issuer_is_back(deployment, token):
    deployment.stop_service("ads")
    deployment.stop_service("users")
    back: list[float] = []

    def done(clients) -> bool:  # users is back and both workers answer: 20 answers of 200 in a row
        with clients.lock:
            tail = [status for _, status, _ in clients.answers[-STEADY:]]
        return bool(back) and len(tail) == STEADY and set(tail) == {200}

    try:
        with Clients(deployment, token, done=done) as clients:
            deployment.start_service("ads")  # users is down: ads can fetch no keys
            while not clients.answers:
                time.sleep(0.05)
            time.sleep(1.0)  # the issuer stays away for the first second
            deployment.start_service("users")
            back.append(time.monotonic())
    finally:
        if "users" not in deployment.children:
            deployment.start_service("users")
    refused = [(status, reason) for _, status, reason in clients.answers if status != 200]
    assert refused, "ads answered while it could not have the issuer's keys"
    assert set(refused) == {(503, "jwks_unavailable")}
    steady = clients.answers[-STEADY:]
    assert [status for _, status, _ in steady] == [200] * STEADY, "never recovered"
    assert steady[0][0] - back[0] < RECOVERY_BOUND_SECONDS
