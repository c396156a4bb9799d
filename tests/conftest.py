"""Fixtures every suite can use: throwaway CAs and certificates (tests/pki_fixtures.py)."""

import pytest

from tests.pki_fixtures import ca, make_leaf, peer_verifier_for, rogue_ca  # noqa: F401


@pytest.fixture(autouse=True)
def _empty_principal_cache():
    """Each test starts with an empty principal cache (s2s_auth.credentials.cache): a
    test's rows are rolled back without a signal, so its entries must not outlive it."""
    try:
        from s2s_auth.credentials.cache import principal_cache
    except ImportError:  # a suite without Django
        yield
        return
    principal_cache.clear()
    yield
    principal_cache.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that used a live server reports that server's log and stacks."""
    report = yield
    if report.failed and call.when == "call":
        from tests.server_evidence import sections

        for title, text in sections(getattr(item, "funcargs", {})):
            report.sections.append((title, text))
    return report
