import pytest

from ads.jobs import users as jobs_users
from tests.live import live_deployment


@pytest.fixture(scope="session")
def live_users(tmp_path_factory):
    """A real UserService (gunicorn, TLS, its own seeded database, the dev PKI with
    the worker's certificate, the principal "worker" with users:read users:notify)."""
    with live_deployment(tmp_path_factory.mktemp("jobs-deployment"), ("users",)) as deployment:
        yield deployment


@pytest.fixture
def jobs_against(settings):
    """Point the jobs (run in this process) at a UserService; fresh tokens before and after."""

    def point(deployment, *, url: str | None = None):
        url = url or deployment.url("users")
        settings.S2S_AUTH = {**settings.S2S_AUTH, "PKI_DIR": str(deployment.pki_dir)}
        settings.USERS_SERVICE_URL = url
        settings.JOBS_TOKEN_URL = f"{url}/oauth/token"
        settings.JOBS_IDENTITY = "worker"
        jobs_users.reset()
        return deployment

    yield point
    jobs_users.reset()


@pytest.fixture
def users(live_users, jobs_against, db):
    """The live UserService, with this process's jobs pointed at it."""
    return jobs_against(live_users)
