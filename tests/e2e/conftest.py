"""The end-to-end suite's shared deployment.

Starting users and ads (PKI, two fresh databases, migrations, demo data, two gunicorns)
takes the better part of a module's time. The modules that need the default
configuration and change nothing of it (no restart, no revocation, no setting) share
one deployment for the session; each of them works with its own people and data.
A module that needs another configuration keeps its own :func:`live_deployment`.
"""

from __future__ import annotations

import pytest

from tests.live import live_deployment


@pytest.fixture(scope="session")
def shared_deployment(tmp_path_factory):
    """users and ads, default configuration, two workers each: started once."""
    with live_deployment(tmp_path_factory.mktemp("shared")) as deployment:
        yield deployment
