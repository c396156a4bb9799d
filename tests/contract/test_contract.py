"""Schemathesis against both live services, started the way ``python -m fleamarket up``
starts them (gunicorn, TLS, the dev PKI, seeded databases), with real credentials:
users is called over mTLS as ``ads`` (scopes ``users:read users:notify``), ads with the
access token seller01 got at login. Every generated request, valid or not, must get
an answer that is not a 5xx and conforms to the schema each service publishes at
``/api/schema/``: status code, content type, headers and body.

Bounded for CI: ``CONTRACT_MAX_EXAMPLES`` examples per operation and generation mode
(default 15; about a minute with the start-up), no shrinking.
"""

from __future__ import annotations

import os

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.app import give_password, log_in
from tests.live import live_deployment

pytestmark = pytest.mark.live

MAX_EXAMPLES = int(os.environ.get("CONTRACT_MAX_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
BOUNDED = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time, the case is shown
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="session")
def deployment(tmp_path_factory):
    with live_deployment(tmp_path_factory.mktemp("contract")) as deployment:
        yield deployment


def _session(deployment) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(deployment.pki_dir / "ca.pem")
    return session


@pytest.fixture(scope="session")
def users_session(deployment):
    """A service's credentials at users: the ads certificate (mTLS)."""
    session = _session(deployment)
    pki = deployment.pki_dir
    session.cert = (str(pki / "ads.pem"), str(pki / "ads.key"))
    return session


@pytest.fixture(scope="session")
def ads_session(deployment):
    """An end user's credentials at ads: seller01's access token from users."""
    person = log_in(deployment, "seller01", give_password(deployment, "seller01"))
    session = _session(deployment)
    session.headers["Authorization"] = f"Bearer {person.token}"
    return session


def _schema(deployment, service: str):
    response = _session(deployment).get(
        deployment.url(service) + "/api/schema/", params={"format": "json"}, timeout=30
    )
    assert response.status_code == 200, response.text[:300]
    return schemathesis.openapi.from_dict(response.json())


@pytest.fixture(scope="session")
def users_schema(deployment):
    return _schema(deployment, "users")


@pytest.fixture(scope="session")
def ads_schema(deployment):
    return _schema(deployment, "ads")


def fuzz(schema, base_url: str, session: requests.Session, mode: GenerationMode) -> list[str]:
    """Every operation, ``MAX_EXAMPLES`` cases each; the failures, one line per operation."""
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @BOUNDED
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case):
            case.call_and_validate(
                base_url=base_url,
                session=session,
                checks=CHECKS,
                timeout=30,
                # Per request: a call's own verify=True would override the session's.
                verify=session.verify,
                cert=session.cert,
            )

        try:
            run()
        except Unsatisfiable:
            continue  # nothing to break: e.g. no parameters to make invalid
        except Exception as exc:
            failures.append(f"{operation.label} ({mode}): {exc}")
    return failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_users_keeps_its_contract(deployment, users_schema, users_session, mode):
    failures = fuzz(users_schema, deployment.url("users"), users_session, mode)
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_ads_keeps_its_contract(deployment, ads_schema, ads_session, mode):
    failures = fuzz(ads_schema, deployment.url("ads"), ads_session, mode)
    assert not failures, "\n\n".join(failures)
