import pytest

from tests.interop.live_issuer import live_issuer


@pytest.fixture(scope="session")
def issuer(tmp_path_factory):
    """One live identity service (UserService over TLS) for every interop test."""
    with live_issuer(tmp_path_factory.mktemp("interop-issuer")) as running:
        yield running
