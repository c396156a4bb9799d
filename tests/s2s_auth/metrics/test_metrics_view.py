"""``/metrics``: refused to anonymous callers and to principals without ``metrics:read``;
for the others the Prometheus text, which a real parser reads, with the decisions made."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from s2s_auth.identity import ServiceIdentity
from s2s_auth.mechanisms.base import ServiceAuthentication
from s2s_auth.metrics.collectors import TrustMaterialCollector

pytestmark = [pytest.mark.urls("tests.s2s_auth.metrics.urls"), pytest.mark.django_db]
MECHANISM = "tests.s2s_auth.metrics.test_metrics_view.HeaderAuthentication"


class HeaderAuthentication(ServiceAuthentication):
    """``X-Test-Service: NAME SCOPE...`` believed as is; ``X-Test-Service: !reason``
    refused with that reason. A test double that goes through accept() and reject()."""

    mechanism = "header"

    def authenticate(self, request):
        value = request.META.get("HTTP_X_TEST_SERVICE")
        if not value:
            return None
        if value.startswith("!"):
            from s2s_auth.errors import S2SError

            self.reject(request, S2SError(value[1:], "refused by the test"))
        name, *scopes = value.split()
        identity = ServiceIdentity(
            name=name,
            spiffe_id=f"spiffe://metrics.test/service/{name}",
            scopes=frozenset(scopes),
            mechanism=self.mechanism,
        )
        self.accept(request, identity)
        return identity, None

    def authenticate_header(self, request) -> str:
        return 'Header realm="test"'


@pytest.fixture(autouse=True)
def header_mechanism(settings, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    settings.S2S_AUTH = {**settings.S2S_AUTH, "MECHANISMS": [MECHANISM]}


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_X_TEST_SERVICE="prometheus metrics:read", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def requests_total(samples, mechanism, outcome, reason="") -> float:
    labels = (("mechanism", mechanism), ("outcome", outcome), ("reason", reason))
    return samples.get(("s2s_auth_requests_total", labels), 0.0)


def test_anonymous_is_refused(client):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert b"s2s_auth_requests_total" not in response.content


def test_a_principal_without_the_scope_is_refused(client):
    response = client.get("/metrics", HTTP_X_TEST_SERVICE="ads users:read")
    assert response.status_code == 403
    assert b"s2s_auth_requests_total" not in response.content


def test_counters_follow_the_decisions(client):
    before = scrape(client)
    client.get("/metrics")  # anonymous
    client.get("/metrics", HTTP_X_TEST_SERVICE="!token_expired")
    client.get("/metrics", HTTP_X_TEST_SERVICE="!token_expired")
    client.get("/metrics", HTTP_X_TEST_SERVICE="ads users:read")  # accepted, then 403
    after = scrape(client)

    def delta(*key):
        return requests_total(after, *key) - requests_total(before, *key)

    assert delta("none", "refused", "not_authenticated") == 1
    assert delta("header", "refused", "token_expired") == 2
    # Two accepted: ads (then refused for its scope) and the first scrape itself.
    assert delta("header", "accepted") == 2
    assert delta("header", "refused", "insufficient_scope") == 1
    count = (
        "s2s_auth_verification_seconds_count",
        (("mechanism", "header"), ("outcome", "refused")),
    )
    assert after[count] - before.get(count, 0) == 2


def test_plain_text_accept_is_served_and_openmetrics_too(client):
    assert scrape(client, HTTP_ACCEPT="text/plain")
    response = client.get(
        "/metrics",
        HTTP_X_TEST_SERVICE="prometheus metrics:read",
        HTTP_ACCEPT="application/openmetrics-text; version=1.0.0",
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.rstrip().endswith(b"# EOF")


def test_certificate_expiry_and_crl_next_update_come_from_the_files(ca, settings, monkeypatch):
    leaf = ca.issue("scraped")
    monkeypatch.setenv("TLS_CERT", str(leaf.cert_path))
    conf = {"SERVICE_NAME": "scraped", "PKI_DIR": str(ca.directory)}
    settings.S2S_AUTH = {**settings.S2S_AUTH, **conf}
    ca.write_crl()
    families = {f.name: f for f in TrustMaterialCollector().collect()}
    (expiry,) = families["s2s_auth_certificate_expiry_timestamp_seconds"].samples
    assert expiry.labels == {"service": "scraped"}
    assert expiry.value == leaf.not_after.timestamp()
    (next_update,) = families["s2s_auth_crl_next_update_timestamp_seconds"].samples
    assert next_update.value > expiry.value - 24 * 3600


def test_a_missing_certificate_gives_no_sample(settings, monkeypatch, tmp_path):
    monkeypatch.setenv("TLS_CERT", str(tmp_path / "none.pem"))
    settings.S2S_AUTH = {**settings.S2S_AUTH, "CRL_FILE": str(tmp_path / "none.crl")}
    families = {f.name: f for f in TrustMaterialCollector().collect()}
    assert families["s2s_auth_certificate_expiry_timestamp_seconds"].samples == []
    assert families["s2s_auth_crl_next_update_timestamp_seconds"].samples == []
