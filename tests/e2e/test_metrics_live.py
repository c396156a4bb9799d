"""``/metrics`` of both live services (gunicorn, two workers each, the TLS worker),
scraped the way Prometheus does: over mTLS with the ``prometheus`` principal's
certificate, parsed by ``prometheus_client.parser``, counters checked against the
calls this test made — whichever worker process served them."""

from __future__ import annotations

import pytest
import requests
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

PREVIEWS = "/api/v1/users/previews?ids=1,2"


@pytest.fixture(scope="module")
def live(shared_deployment):
    return shared_deployment


def session(live, name: str | None) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = str(live.pki_dir / "ca.pem")
    if name:
        s.cert = (str(live.pki_dir / f"{name}.pem"), str(live.pki_dir / f"{name}.key"))
    return s


def scrape(live, service: str) -> dict:
    response = session(live, "prometheus").get(live.url(service) + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def get(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def decisions(samples, mechanism, outcome, reason="") -> float:
    return get(
        samples, "s2s_auth_requests_total", mechanism=mechanism, outcome=outcome, reason=reason
    )


def test_anonymous_and_unscoped_callers_are_refused(live):
    for service in ("users", "ads"):
        anonymous = session(live, None).get(live.url(service) + "/metrics", timeout=10)
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == "not_authenticated"
    unscoped = session(live, "ads").get(live.url("users") + "/metrics", timeout=10)
    assert unscoped.status_code == 403
    assert unscoped.json()["error"] == "insufficient_scope"


def test_counters_match_the_calls_made(live):
    users = live.url("users")
    before = scrape(live, "users")
    ads = session(live, "ads")
    for _ in range(7):  # ads over mTLS: accepted
        assert ads.get(users + PREVIEWS, timeout=10).status_code == 200
    for _ in range(3):  # no credential at all
        assert session(live, None).get(users + PREVIEWS, timeout=10).status_code == 401
    for _ in range(2):  # a certificate-bound token for ads (tls_client_auth)
        token = ads.post(
            users + "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": "ads", "scope": "users:read"},
            timeout=10,
        )
        assert token.status_code == 200, token.text
    after = scrape(live, "users")

    # 7 previews + the second scrape (the first counted itself before `before`).
    assert decisions(after, "mtls", "accepted") - decisions(before, "mtls", "accepted") == 8
    refused = decisions(after, "none", "refused", "not_authenticated")
    assert refused - decisions(before, "none", "refused", "not_authenticated") == 3
    issued = ("s2s_auth_tokens_issued_total",)
    labels = {"client": "ads", "grant": "client_credentials"}
    assert get(after, *issued, **labels) - get(before, *issued, **labels) == 2
    latency = get(
        after, "s2s_auth_verification_seconds_count", mechanism="mtls", outcome="accepted"
    )
    assert latency >= 8
    assert get(after, "s2s_auth_audit_write_seconds_count") >= 8 + 3


def test_certificate_expiry_of_each_service_is_its_own(live):
    for service in ("users", "ads"):
        pem = (live.pki_dir / f"{service}.pem").read_bytes()
        not_after = x509.load_pem_x509_certificates(pem)[0].not_valid_after_utc.timestamp()
        samples = scrape(live, service)
        name = "s2s_auth_certificate_expiry_timestamp_seconds"
        assert get(samples, name, service=service) == not_after
        assert get(samples, "s2s_auth_crl_next_update_timestamp_seconds") > not_after - 86400
