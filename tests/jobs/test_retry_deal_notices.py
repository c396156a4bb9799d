"""``jobs.retry_deal_notice`` run in this process (Celery eager, as the other jobs tests
run their tasks) against a live UserService: a deal notice UserService did not take is
retried with bounded backoff while the buyer's token is valid, then delivered once."""

from __future__ import annotations

import logging

import pytest
from celery.app import autoretry

from ads.jobs.tasks import DealNoticeJob, NoticeNotTaken, retry_deal_notice
from ads.listings import notices
from ads.listings.models import Ad, Deal
from ads.listings.sellers import users_breaker, users_client
from fleamarket.celery import app
from tests.e2e.app import give_password, log_in
from tests.jobs.support import users_state
from tests.live import free_port

pytestmark = pytest.mark.live

SELLER, BUYER = 1, 2  # seller01 and seller02 at users


@pytest.fixture(scope="module")
def buyer(live_users):
    return log_in(live_users, "seller02", give_password(live_users, "seller02"))


@pytest.fixture
def ads_to(settings, users):
    """ads' own client (mTLS as ads, service JWT) pointed at a URL; Celery eager."""
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True

    def point(url: str):
        settings.USERS_SERVICE_URL = url
        users_client.cache_clear()
        users_breaker.reset()

    yield point
    app.conf.task_always_eager = eager
    users_client.cache_clear()
    users_breaker.reset()


@pytest.fixture
def deal(db):
    ad = Ad.objects.create(
        title="Desk lamp", price=10, latitude=52.5, longitude=13.4, seller_id=SELLER
    )
    return Deal.objects.create(ad=ad, kind="reserve", buyer_id=BUYER, seller_id=SELLER)


def notices_of(deployment, deal: Deal) -> list[dict]:
    key = f"deal:{deal.pk}:requested"
    return [n for n in users_state(deployment)["notifications"] if n["idempotency_key"] == key]


def test_a_notice_users_did_not_take_is_retried_and_delivered_once(
    users, ads_to, buyer, deal, monkeypatch, caplog
):
    intervals = []
    backoff = autoretry.get_exponential_backoff_interval

    def recording(**kwargs):
        intervals.append(kwargs)
        return backoff(**kwargs)

    monkeypatch.setattr(autoretry, "get_exponential_backoff_interval", recording)
    ads_to(f"https://127.0.0.1:{free_port()}")  # users down while the deal is made
    with caplog.at_level(logging.INFO):
        assert notices.deliver(deal.pk, "requested", buyer.token, "seller02") is False
    assert "queued for retry" in caplog.text
    # Every retry failed too (eager: at once), a bounded number of times, then it gave up.
    assert [i["retries"] for i in intervals] == list(range(DealNoticeJob.max_retries + 1))
    assert {(i["factor"], i["maximum"], i["full_jitter"]) for i in intervals} == {(2, 64, True)}
    deal.refresh_from_db()
    assert deal.seller_notified_at is None
    assert buyer.token not in caplog.text  # never logged

    ads_to(users.url("users"))  # users is back: the next retry delivers
    assert retry_deal_notice.apply(args=(deal.pk, "requested", "seller02")).get() == "sent"
    deal.refresh_from_db()
    assert deal.seller_notified_at is not None
    [sent] = notices_of(users, deal)
    assert (sent["user_id"], sent["kind"], sent["ad_id"]) == (SELLER, "deal_requested", deal.ad_id)
    # Done: the token left the cache, a further run sends nothing.
    assert retry_deal_notice.apply(args=(deal.pk, "requested", "seller02")).get() == "expired"
    assert len(notices_of(users, deal)) == 1


def test_the_notice_is_sent_for_the_buyer(users, ads_to, buyer, deal):
    ads_to(f"https://127.0.0.1:{free_port()}")
    notices.deliver(deal.pk, "requested", buyer.token, "seller02")
    ads_to(users.url("users"))
    retry_deal_notice.apply(args=(deal.pk, "requested", "seller02")).get()
    audit = [a for a in users_state(users)["audit"] if a["outcome"] == "accepted"]
    assert audit[-1]["end_user"] == str(BUYER)


def test_a_refusal_is_not_retried(users, ads_to, live_users, deal, caplog):
    """The seller's own token for a notice to the seller: 403, final."""
    seller = log_in(live_users, "seller01", give_password(live_users, "seller01"))
    ads_to(users.url("users"))
    with caplog.at_level(logging.INFO):
        assert notices.deliver(deal.pk, "requested", seller.token, "seller01") is False
    assert "refused: HTTP 403" in caplog.text
    assert "queued for retry" not in caplog.text


def test_without_the_users_token_nothing_is_sent(users, ads_to, deal):
    ads_to(users.url("users"))
    before = users_state(users)
    result = retry_deal_notice.apply(args=(deal.pk, "requested", "seller02"))
    assert result.get() == "expired"
    assert users_state(users) == before  # not called: no notice, no audit record


def test_a_token_about_to_expire_is_not_queued(users, ads_to, deal, caplog):
    ads_to(f"https://127.0.0.1:{free_port()}")
    with caplog.at_level(logging.INFO):
        notices.deliver(deal.pk, "requested", "not-a-jwt", "seller02")
    assert "not retried: the user's token expires" in caplog.text


def test_a_failed_retry_raises_for_the_backoff(users, ads_to, buyer, deal):
    ads_to(f"https://127.0.0.1:{free_port()}")
    from django.core.cache import cache

    cache.set(f"ads:deal-notice:{deal.pk}:requested", buyer.token, 60)
    result = retry_deal_notice.apply(args=(deal.pk, "requested", "seller02"))
    with pytest.raises(NoticeNotTaken):
        result.get()
