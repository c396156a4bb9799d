"""``jobs.expire_stale_ads`` run in this process (``apply``) against a live UserService:
real TLS, real tokens from the identity service, real notifications."""

import time
from datetime import timedelta

import pytest
from celery.app import autoretry
from django.utils import timezone

from ads.jobs import expiry
from ads.jobs import users as jobs_users
from ads.jobs.tasks import expire_stale_ads
from ads.jobs.users import UsersServiceRefused, UsersServiceUnavailable
from ads.listings.models import Ad
from s2s_auth.client.token_manager import TokenManager
from s2s_auth.conf import DEFAULTS
from tests.jobs.support import users_state
from tests.live import free_port

pytestmark = pytest.mark.live

WORKER = "spiffe://fleamarket.local/service/worker"


def make_ad(seller_id: int, *, days: float, status=Ad.Status.ACTIVE, title="Lamp") -> Ad:
    return Ad.objects.create(
        title=title,
        price=10,
        latitude=48.2,
        longitude=16.37,
        seller_id=seller_id,
        status=status,
        expires_at=timezone.now() + timedelta(days=days),
    )


def notifications_for(deployment, ads: list[Ad]) -> dict[str, list[dict]]:
    """UserService's notifications by idempotency key, for these ads' keys."""
    keys = {expiry.idempotency_key(ad) for ad in Ad.objects.filter(pk__in=[a.pk for a in ads])}
    found: dict[str, list[dict]] = {key: [] for key in keys}
    for item in users_state(deployment)["notifications"]:
        if item["idempotency_key"] in keys:
            found[item["idempotency_key"]].append(item)
    return found


def test_expires_stale_ads_and_notifies_each_seller_once_with_one_token(users):
    stale = [make_ad(seller, days=-1, title=f"Old {seller}") for seller in (1, 2, 2, 3, 4)]
    fresh = make_ad(1, days=3)
    reserved = make_ad(2, days=-1, status=Ad.Status.RESERVED)

    summary = expire_stale_ads.apply(kwargs={"batch_size": 2}).get()

    assert summary == {
        "expired": 5,
        "notified": 5,
        "already_notified": 0,
        "unknown_sellers": 0,
        "batches": 3,
        "token_requests": 1,
    }
    for ad in stale:
        ad.refresh_from_db()
        assert ad.status == Ad.Status.EXPIRED
        assert ad.expired_at is not None and ad.expiry_notified_at is not None
    fresh.refresh_from_db()
    reserved.refresh_from_db()
    assert (fresh.status, fresh.expired_at) == (Ad.Status.ACTIVE, None)
    assert (reserved.status, reserved.expired_at) == (Ad.Status.RESERVED, None)

    found = notifications_for(users, stale)
    assert all(len(items) == 1 for items in found.values()), found
    by_ad = {items[0]["ad_id"]: items[0] for items in found.values()}
    for ad in stale:
        item = by_ad[ad.pk]
        assert (item["user_id"], item["kind"], item["sender"]) == (
            ad.seller_id,
            "ad_expired",
            WORKER,
        )


def test_rerun_and_lost_stamps_send_no_duplicate_notifications(users):
    stale = [make_ad(seller, days=-2) for seller in (5, 6, 7)]
    first = expire_stale_ads.apply().get()
    assert (first["notified"], first["token_requests"]) == (3, 1)

    again = expire_stale_ads.apply().get()  # nothing pending: nothing sent
    assert (again["expired"], again["notified"], again["already_notified"]) == (0, 0, 0)

    # A worker that died after UserService accepted the notices but before the ads
    # were stamped: the next run sends them again, with the same idempotency keys.
    Ad.objects.filter(pk__in=[ad.pk for ad in stale]).update(expiry_notified_at=None)
    replay = expire_stale_ads.apply().get()
    assert (replay["notified"], replay["already_notified"]) == (0, 3)
    assert replay["token_requests"] == 0  # the token of the first run is still good

    found = notifications_for(users, stale)
    assert sorted(len(items) for items in found.values()) == [1, 1, 1]


def test_an_ad_expiring_again_gets_a_new_notice(users):
    ad = make_ad(8, days=-1)
    expire_stale_ads.apply().get()
    first_key = expiry.idempotency_key(Ad.objects.get(pk=ad.pk))
    # The seller renews it; it expires again.
    Ad.objects.filter(pk=ad.pk).update(
        status=Ad.Status.ACTIVE, expires_at=timezone.now() - timedelta(seconds=1)
    )
    summary = expire_stale_ads.apply().get()
    assert (summary["expired"], summary["notified"]) == (1, 1)
    assert expiry.idempotency_key(Ad.objects.get(pk=ad.pk)) != first_key


def test_unknown_seller_is_skipped_and_not_retried(users, caplog):
    ad = make_ad(987654, days=-1)
    summary = expire_stale_ads.apply().get()
    assert (summary["unknown_sellers"], summary["notified"]) == (1, 0)
    ad.refresh_from_db()
    assert ad.expiry_notified_at is not None  # given up: not retried every night
    assert "seller 987654 is unknown to UserService" in caplog.text


def test_token_expiring_mid_batch_is_refreshed(users, monkeypatch):
    now = [1000.0]
    build = jobs_users._build_token_manager

    def with_clock(scope):
        manager = build(scope)
        manager._clock = lambda: now[0]
        return manager

    monkeypatch.setattr(jobs_users, "_build_token_manager", with_clock)
    notify = expiry._notify
    sent = []

    def notify_then_age(ad, run):
        notify(ad, run)
        sent.append(ad.pk)
        if len(sent) == 2:
            now[0] += 24 * 3600  # the token has long expired

    monkeypatch.setattr(expiry, "_notify", notify_then_age)
    for seller in (9, 10, 11, 12):
        make_ad(seller, days=-1)

    summary = expire_stale_ads.apply().get()

    assert (summary["notified"], summary["token_requests"]) == (4, 2)


def test_revoked_scope_fails_loudly_with_the_reason_and_is_not_retried(users, caplog, monkeypatch):
    make_ad(13, days=-1)
    expire_stale_ads.apply().get()  # the worker now holds a token with users:notify
    make_ad(14, days=-1)
    attempts = []
    notify_sellers = expiry.notify_sellers

    def counting(*args, **kwargs):
        attempts.append(1)
        return notify_sellers(*args, **kwargs)

    monkeypatch.setattr(expiry, "notify_sellers", counting)
    users.manage("users", "s2s_service", "revoke", "worker", "users:notify")
    # users drops its cached principal within PRINCIPAL_CACHE_CHECK_SECONDS of the
    # revocation; manage.py may return sooner than that (a call made before would still
    # be served, and notify seller 14).
    time.sleep(DEFAULTS["PRINCIPAL_CACHE_CHECK_SECONDS"] + 0.5)
    try:
        with pytest.raises(UsersServiceRefused) as refused:
            expire_stale_ads.apply().get()
        assert (refused.value.status, refused.value.error) == (403, "insufficient_scope")
        assert f"by {WORKER}: HTTP 403 insufficient_scope" in str(refused.value)
        assert "insufficient_scope" in caplog.text and "(not retried)" in caplog.text
        assert attempts == [1]

        # Nor can a new token be had: the issuer refuses to grant the scope.
        jobs_users.reset()
        with pytest.raises(UsersServiceRefused) as refused:
            expire_stale_ads.apply().get()
        assert refused.value.error == "invalid_scope"
        assert attempts == [1, 1]
    finally:
        users.manage("users", "s2s_service", "grant", "worker", "users:notify")
    assert Ad.objects.get(seller_id=14).expiry_notified_at is None  # still pending


def test_users_down_is_retried_with_exponential_backoff_then_gives_up(
    jobs_against, live_users, db, monkeypatch, settings
):
    jobs_against(live_users, url=f"https://127.0.0.1:{free_port()}")  # nothing listens
    monkeypatch.setattr(
        jobs_users,
        "_build_token_manager",
        lambda scope: TokenManager(
            settings.JOBS_TOKEN_URL,
            client_id="worker",
            cert=(live_users.pki_dir / "worker.pem", live_users.pki_dir / "worker.key"),
            auth_method="tls_client_auth",
            scope=scope,
            ca_bundle=live_users.pki_dir / "ca.pem",
            max_attempts=1,
        ),
    )
    intervals = []
    backoff = autoretry.get_exponential_backoff_interval

    def recording(**kwargs):
        intervals.append(kwargs)
        return backoff(**kwargs)

    monkeypatch.setattr(autoretry, "get_exponential_backoff_interval", recording)
    make_ad(15, days=-1)

    result = expire_stale_ads.apply()  # eager: the retries run at once, without waiting

    with pytest.raises(UsersServiceUnavailable, match="connection_failed"):
        result.get()
    policy = settings.JOBS_RETRY_POLICY
    assert [i["retries"] for i in intervals] == list(range(policy["max_retries"] + 1))
    assert {(i["factor"], i["maximum"], i["full_jitter"]) for i in intervals} == {
        (policy["retry_backoff"], policy["retry_backoff_max"], True)
    }
    assert Ad.objects.get(seller_id=15).status == Ad.Status.EXPIRED  # step 1 is local


def test_a_404_that_is_not_unknown_user_is_a_refusal_not_a_skip(db, monkeypatch, settings):
    """A 404 from a wrong URL or a proxy must not make the job give up on sellers."""
    import requests

    def not_found(*args, **kwargs):
        response = requests.Response()
        response.status_code = 404
        response._content = b"<h1>Not Found</h1>"
        response.request = requests.Request(
            "POST", "https://users.internal/api/v1/users/16/notifications"
        ).prepare()
        return response

    monkeypatch.setattr(jobs_users, "call", not_found)
    monkeypatch.setattr(
        jobs_users, "token_manager", lambda scope: type("M", (), {"fetch_count": 0})()
    )
    ad = make_ad(16, days=-1)
    with pytest.raises(UsersServiceRefused, match="HTTP 404"):
        expire_stale_ads.apply().get()
    ad.refresh_from_db()
    assert ad.expiry_notified_at is None
