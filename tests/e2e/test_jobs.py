"""The batch jobs for real: a Celery worker process (and beat) on the deployment's broker
(Redis when CELERY_BROKER_URL says so, else the embedded filesystem transport), AdService's
database, and UserService over TLS, the way ``python -m fleamarket up`` runs them."""

from __future__ import annotations

import time
import uuid

import pytest

from s2s_auth.conf import DEFAULTS
from tests.jobs.support import ads_shell, issued_tokens, users_state
from tests.live import live_deployment

pytestmark = pytest.mark.live

WORKER = "spiffe://fleamarket.local/service/worker"
RESULT_TIMEOUT = 60


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """users + ads (fresh, seeded databases) and one worker; retries fast for the test."""
    fast_retries = {
        "JOBS_MAX_RETRIES": "10",
        "JOBS_RETRY_BACKOFF": "1",
        "JOBS_RETRY_BACKOFF_MAX": "1",
    }
    with live_deployment(
        tmp_path_factory.mktemp("jobs-e2e"),
        ("users", "ads"),
        jobs_queue=f"test-{uuid.uuid4().hex[:10]}",
        extra_env={"worker": fast_retries},
    ) as deployment:
        deployment.start_worker(concurrency=1)
        yield deployment


@pytest.fixture(scope="module")
def celery(deployment):
    app = deployment.celery_app()
    yield app
    app.close()


def run_job(celery, name: str, **kwargs):
    return celery.send_task(name, kwargs=kwargs)


def expire_ads(deployment, count: int) -> list[int]:
    """Make ``count`` active ads stale; their ids."""
    return ads_shell(
        deployment,
        f"ids = list(Ad.objects.filter(status='active').order_by('id')"
        f".values_list('id', flat=True)[:{count}])\n"
        "Ad.objects.filter(id__in=ids).update(expires_at=timezone.now() - timedelta(minutes=1))\n"
        "out = ids",
    )


def worker_log(deployment) -> str:
    return deployment.log_path("worker").read_text(errors="replace")


def test_worker_expires_ads_and_notifies_each_seller_once_with_one_token(deployment, celery):
    stale = ads_shell(
        deployment,
        "out = Ad.objects.filter(status='active', expires_at__lte=timezone.now()).count()",
    )
    assert stale > 10  # the demo data has some; several batches of 10

    summary = run_job(celery, "jobs.expire_stale_ads", batch_size=10).get(RESULT_TIMEOUT)

    assert summary["expired"] == summary["notified"] == stale
    assert summary["batches"] == -(-stale // 10)
    assert (summary["already_notified"], summary["unknown_sellers"]) == (0, 0)
    assert summary["token_requests"] == 1
    assert issued_tokens(deployment) == 1  # counted by the issuer too

    state = users_state(deployment)
    notes = state["notifications"]
    assert len(notes) == stale
    assert {n["sender"] for n in notes} == {WORKER}
    assert len({n["idempotency_key"] for n in notes}) == stale
    # UserService audited every call: the worker itself, no end user, one token.
    posts = [a for a in state["audit"] if a["method"] == "POST"]
    assert len(posts) == stale
    assert {(a["mechanism"], a["principal"], a["end_user"], a["outcome"]) for a in posts} == {
        ("access_token", WORKER, "", "accepted")
    }
    assert len({a["claims"].get("jti") for a in posts}) == 1
    assert {a["claims"].get("scope") for a in posts} == {"users:notify"}


def test_rerun_after_lost_stamps_sends_no_duplicates(deployment, celery):
    before = len(users_state(deployment)["notifications"])
    # As if the worker had died after UserService accepted, before the ads were stamped.
    reset = ads_shell(
        deployment,
        "out = Ad.objects.filter(status='expired').update(expiry_notified_at=None)",
    )
    assert reset == before

    summary = run_job(celery, "jobs.expire_stale_ads").get(RESULT_TIMEOUT)

    assert (summary["notified"], summary["already_notified"]) == (0, before)
    assert summary["token_requests"] == 0  # the worker still holds its token
    assert len(users_state(deployment)["notifications"]) == before


def test_userservice_down_is_retried_until_it_is_back(deployment, celery):
    before = len(users_state(deployment)["notifications"])
    expire_ads(deployment, 2)
    deployment.stop_service("users")
    try:
        result = run_job(celery, "jobs.expire_stale_ads")
        deadline = time.monotonic() + 30
        while result.state != "RETRY" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert result.state == "RETRY", result.state
    finally:
        deployment.start_service("users")

    summary = result.get(RESULT_TIMEOUT)

    assert summary["notified"] == 2
    assert len(users_state(deployment)["notifications"]) == before + 2
    log = worker_log(deployment)
    assert f"Task jobs.expire_stale_ads[{result.id}] retry" in log
    assert "UsersServiceUnavailable" in log


def test_revoked_scope_fails_the_task_loudly_without_retrying(deployment, celery):
    [ad_id] = expire_ads(deployment, 1)
    deployment.manage("users", "s2s_service", "revoke", "worker", "users:notify")
    # users drops its cached principal within PRINCIPAL_CACHE_CHECK_SECONDS of the
    # revocation; manage.py may return sooner than that.
    time.sleep(DEFAULTS["PRINCIPAL_CACHE_CHECK_SECONDS"] + 0.5)
    try:
        result = run_job(celery, "jobs.expire_stale_ads")
        with pytest.raises(Exception, match="HTTP 403 insufficient_scope") as failed:
            result.get(RESULT_TIMEOUT)
        assert type(failed.value).__name__ == "UsersServiceRefused"
        assert result.state == "FAILURE"
    finally:
        deployment.manage("users", "s2s_service", "grant", "worker", "users:notify")
    log = worker_log(deployment)
    assert f"Task jobs.expire_stale_ads[{result.id}] retry" not in log
    assert "ERROR ads.jobs.users: UserService refused POST" in log
    assert "HTTP 403 insufficient_scope: worker lacks scope(s): users:notify (not retried)" in log
    refused = [
        a
        for a in users_state(deployment)["audit"]
        if a["outcome"] == "refused" and a["method"] == "POST"
    ]
    assert refused and refused[-1]["principal"] == WORKER
    assert refused[-1]["reason"] == "insufficient_scope"
    pending = ads_shell(deployment, f"out = Ad.objects.get(id={ad_id}).expiry_notified_at is None")
    assert pending  # the next run, once the scope is back, notifies this seller

    summary = run_job(celery, "jobs.expire_stale_ads").get(RESULT_TIMEOUT)
    assert summary["notified"] == 1


def test_beat_enqueues_both_jobs_on_schedule(deployment, celery):
    expire_ads(deployment, 1)
    deployment.extra_env["beat"] = {
        "JOBS_EXPIRE_SCHEDULE": "1",
        "JOBS_PREVIEWS_SCHEDULE": "1",
    }
    start = len(worker_log(deployment))
    deployment.start_beat()
    try:
        deadline = time.monotonic() + 30
        log = ""
        while time.monotonic() < deadline:
            log = worker_log(deployment)[start:]
            if "expire_stale_ads (attempt" in log and "refresh_seller_previews (attempt" in log:
                break
            time.sleep(0.2)
    finally:
        deployment.stop_service("beat")
        deployment.extra_env.pop("beat")
    assert "'notified': 1" in log, log
    assert "refresh_seller_previews (attempt 1)" in log, log
    cached = ads_shell(
        deployment,
        "out = list(Ad.objects.filter(status='active').values_list('seller_preview', flat=True)"
        "[:5])",
    )
    assert all(preview and preview["id"] for preview in cached)
