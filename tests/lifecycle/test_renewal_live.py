"""The deployment renews its own certificates under steady traffic (issue 15).

``S2S_CERT_LIFETIME=60s``: users, ads (two gunicorn workers each) and a Celery worker
run as ``python -m fleamarket up`` runs them, each with its renewal agent (gunicorn
master; the Celery worker's main process). For more than three lifetimes an end user
asks ads for ads nearby (ads calls users over mTLS with a service JWT per call, and
exchanges the user's token), and the nightly preview job calls users with the
worker's certificate-bound token. Every call must succeed — fresh previews, never
the stale fallback — and users' server certificate (read from TLS handshakes) and
ads' and the worker's client certificates (as users saw them, in its audit log) must
each have changed serial at least twice. No process is restarted.

Takes about four minutes: its own suite (``lifecycle``), run in the SQLite pass of
``.ci/run`` only.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import time

import pytest
from cryptography import x509

from fleamarket.deployment import Deployment
from fleamarket.processes import free_port
from s2s_auth.core.ca import CertificateAuthority
from tests.e2e.app import give_password, log_in
from tests.jobs.support import shell_json
from tests.live import fresh_database

pytestmark = pytest.mark.live

LIFETIME = 60
#: Three lifetimes of traffic, plus the first renewal point.
DURATION = 3 * LIFETIME + 40
BERLIN = {"lat": "52.52", "lon": "13.405", "radius_km": "10"}
TD = "fleamarket.local"
JOB_EVERY = 8  # seconds between two runs of the preview job
RESULT_TIMEOUT = 60


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("lifecycle")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("S2S_CERT_LIFETIME", f"{LIFETIME}s")
        patch.delenv("S2S_RENEWAL_AGENT", raising=False)
        with (
            fresh_database("users", workdir) as users_db,
            fresh_database("ads", workdir) as ads_db,
        ):
            deployment = Deployment(
                var=workdir,
                ports={"users": free_port(), "ads": free_port()},
                database_urls={"users": users_db, "ads": ads_db},
                extra_env={"ads": {"USERS_SERVICE_MECHANISM": "service_jwt"}},
                jobs_queue=f"lifecycle-{free_port()}",
            )
            deployment.prepare()
            # Preparing takes a while: start from fresh short-lived certificates, as `up` would.
            ca = CertificateAuthority(deployment.pki_dir, TD)
            for name in ("users", "ads", "worker"):
                ca.renew(name, hours=LIFETIME / 3600)
            with deployment:
                deployment.start_worker(concurrency=2)
                yield deployment


def server_serial(deployment) -> int:
    """The serial of the certificate users presents in a fresh handshake."""
    context = ssl.create_default_context(cafile=str(deployment.pki_dir / "ca.pem"))
    port = deployment.ports["users"]
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number


def users_audit(deployment, since: str) -> dict:
    return shell_json(
        deployment,
        "users",
        "import json\n"
        "from s2s_auth.models import AuditRecord\n"
        f"rows = AuditRecord.objects.filter(time__gte={since!r})\n"
        "out = {\n"
        "  'refused': list(rows.filter(outcome='refused').values('reason', 'principal', 'path')[:20]),\n"  # noqa: E501
        "  'fingerprints': {p: sorted(set(rows.filter(principal=p, outcome='accepted')"
        "    .exclude(fingerprint='').values_list('fingerprint', flat=True)))"
        f"    for p in ('spiffe://{TD}/service/ads', 'spiffe://{TD}/service/worker')}},\n"
        "  'renewed': list(rows.filter(reason='certificate_renewed')"
        "    .values_list('principal', flat=True)),\n"
        "}\n"
        'print("JSON:" + json.dumps(out, default=str))\n',
    )


def test_certificates_renew_under_traffic_with_no_failed_call(deployment):
    since = dt.datetime.now(dt.UTC).isoformat()
    buyer = log_in(deployment, "seller05", give_password(deployment, "seller05"))
    celery = deployment.celery_app()
    failures: list[str] = []
    server_serials: list[int] = []
    nearby_calls = jobs = 0
    started = time.monotonic()
    next_job = started
    try:
        while time.monotonic() - started < DURATION:
            response = buyer.ads("GET", "/api/v1/ads/nearby", params=BERLIN)
            nearby_calls += 1
            if response.status_code != 200:
                failures.append(f"nearby {response.status_code}: {response.text[:300]}")
            else:
                sellers = [ad["seller"] for ad in response.json()["results"]]
                if not sellers or any(s is None or s["stale"] for s in sellers):
                    failures.append(f"nearby without fresh previews: {sellers[:2]}")
            serial = server_serial(deployment)
            if not server_serials or server_serials[-1] != serial:
                server_serials.append(serial)
            if time.monotonic() >= next_job:
                result = celery.send_task("jobs.refresh_seller_previews")
                try:
                    summary = result.get(RESULT_TIMEOUT)
                    if summary["sellers"] == 0 or summary["pages"] == 0:
                        failures.append(f"job did nothing: {summary}")
                except Exception as exc:
                    failures.append(f"job failed: {type(exc).__name__}: {exc}")
                jobs += 1
                next_job = time.monotonic() + JOB_EVERY
            time.sleep(0.5)
    finally:
        celery.close()

    audit = users_audit(deployment, since)
    assert failures == [], failures[:5]
    assert audit["refused"] == []
    assert nearby_calls > 100 and jobs >= 3 * LIFETIME // JOB_EVERY
    # users' server certificate, ads' and the worker's client certificates: each
    # changed at least twice (three or more in use along the way).
    assert len(server_serials) >= 3, server_serials
    fingerprints = audit["fingerprints"]
    assert len(fingerprints[f"spiffe://{TD}/service/ads"]) >= 3, fingerprints
    assert len(fingerprints[f"spiffe://{TD}/service/worker"]) >= 3, fingerprints
    # Every renewal went through the identity service's endpoint, audited.
    renewed = audit["renewed"]
    for name in ("users", "ads", "worker"):
        assert renewed.count(f"spiffe://{TD}/service/{name}") >= 2, renewed
    for service in ("users", "ads"):
        assert deployment.children[service].poll() is None  # never restarted
