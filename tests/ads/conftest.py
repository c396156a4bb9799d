import socket
import threading
from types import SimpleNamespace

import pytest

from ads.listings.sellers import degraded, users_breaker, users_client
from tests.live import free_port, live_deployment


@pytest.fixture(autouse=True)
def fresh_breaker():
    """Each test starts with UserService's circuit breaker closed and nothing counted."""
    users_breaker.reset()
    degraded.clear()
    yield
    users_breaker.reset()
    degraded.clear()


@pytest.fixture(scope="session")
def live_users(tmp_path_factory):
    """A real UserService (gunicorn with TLS, its own seeded database, the dev PKI)."""
    with live_deployment(tmp_path_factory.mktemp("deployment"), ("users",)) as deployment:
        yield deployment


@pytest.fixture
def users_at(settings):
    """Point ads at a UserService URL (and its PKI); fresh clients before and after."""

    def point(url: str, timeout=(5.0, 10.0), pki_dir=None):  # hangs pass their own
        if pki_dir:
            settings.S2S_AUTH = {**settings.S2S_AUTH, "PKI_DIR": str(pki_dir)}
        settings.USERS_SERVICE_URL = url
        settings.USERS_SERVICE_TIMEOUT = timeout
        users_client.cache_clear()

    yield point
    users_client.cache_clear()


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers: a hung UserService.
    ``.url`` to call it, ``.accepted``: the connections it got."""
    port = free_port()
    server = socket.socket()
    server.bind(("127.0.0.1", port))
    server.listen()
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}", accepted=accepted)
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


@pytest.fixture
def as_end_user(db):
    """A DRF test client for end user ``user_id`` as EndUserTokenAuthentication leaves
    it (``TokenUser`` + ``AccessToken``); the live flows (tests/e2e) use real tokens."""
    from rest_framework.test import APIClient

    from s2s_auth import AccessToken, TokenUser

    def client_for(user_id, username: str = "") -> APIClient:
        sub = str(user_id)
        token = AccessToken(
            header={"alg": "ES256", "typ": "at+jwt"},
            claims={"sub": sub, "scope": "ads:read ads:write"},
            key_id=None,
            algorithm="ES256",
            token_hash="0" * 64,
            token=f"user-token-{sub}",
        )
        api = APIClient()
        api.force_authenticate(TokenUser(id=sub, username=username), token)
        return api

    return client_for
