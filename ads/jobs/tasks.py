"""The Celery tasks of AdService. Thin: the logic is in ``expiry`` and ``seller_previews``.

Both tasks call UserService as the worker (see :mod:`ads.jobs.users`) and share one
retry policy (:class:`UsersServiceJob`): a transient failure is retried with
exponential backoff and full jitter, a bounded number of times; a refusal (401/403)
fails the task at once, logged with UserService's reason code. Retrying is safe
because both jobs are idempotent.
"""

from __future__ import annotations

import dataclasses
import logging

from celery import Task, shared_task
from django.conf import settings

from ads.listings import notices

from . import expiry, seller_previews
from .users import UsersServiceUnavailable

__all__ = [
    "DealNoticeJob",
    "NoticeNotTaken",
    "UsersServiceJob",
    "expire_stale_ads",
    "refresh_seller_previews",
    "retry_deal_notice",
]

logger = logging.getLogger(__name__)


class UsersServiceJob(Task):
    """Retry policy of jobs that call UserService.

    Defaults here; the deployment tunes them per task with ``CELERY_TASK_ANNOTATIONS``
    (``JOBS_MAX_RETRIES``, ``JOBS_RETRY_BACKOFF``, ``JOBS_RETRY_BACKOFF_MAX``): with
    the defaults a job waits at most 2, 4, 8, 16, 32, 64 s (full jitter) between its 7
    attempts and then fails with the last error.
    """

    autoretry_for = (UsersServiceUnavailable,)
    retry_backoff = 2
    retry_backoff_max = 300
    retry_jitter = True
    max_retries = 6


@shared_task(bind=True, base=UsersServiceJob, name="jobs.expire_stale_ads")
def expire_stale_ads(self, batch_size: int | None = None) -> dict:
    """Nightly: expire ads past ``expires_at``, then notify each seller (idempotent)."""
    expired = expiry.expire_stale_ads()
    run = expiry.notify_sellers(batch_size or settings.JOBS_BATCH_SIZE)
    run.expired = expired
    logger.info(
        "expire_stale_ads (attempt %d): %s", self.request.retries + 1, dataclasses.asdict(run)
    )
    return dataclasses.asdict(run)


@shared_task(bind=True, base=UsersServiceJob, name="jobs.refresh_seller_previews")
def refresh_seller_previews(self, page_size: int | None = None) -> dict:
    """Refresh the cached seller previews of shown ads, one UserService call per page."""
    run = seller_previews.refresh_seller_previews(page_size or settings.JOBS_PAGE_SIZE)
    logger.info(
        "refresh_seller_previews (attempt %d): %s",
        self.request.retries + 1,
        dataclasses.asdict(run),
    )
    return dataclasses.asdict(run)


class NoticeNotTaken(Exception):
    """UserService did not take a deal notice, for a reason that may pass."""


class DealNoticeJob(Task):
    """Retry policy of a deal notice: bounded, and short, because the notice is sent
    with the acting user's token, valid minutes (``USER_TOKEN_LIFETIME``, 15 by
    default): at most 2, 4, 8, 16, 32, 64 s (full jitter) after the first retry, 5 s
    after the request. No result is kept: nothing to read, nothing to leak."""

    autoretry_for = (NoticeNotTaken,)
    retry_backoff = 2
    retry_backoff_max = 64
    retry_jitter = True
    max_retries = 6
    ignore_result = True


@shared_task(bind=True, base=DealNoticeJob, name="jobs.retry_deal_notice")
def retry_deal_notice(self, deal_id: int, event: str, username: str = "") -> str:
    """Send a deal notice UserService did not take (see :mod:`ads.listings.notices`)."""
    outcome = notices.retry(deal_id, event, username)
    attempt = self.request.retries + 1
    logger.info("retry_deal_notice deal %s %s (retry %d): %s", deal_id, event, attempt, outcome)
    if outcome == notices.RETRY:
        raise NoticeNotTaken(f"deal {deal_id}: notice {event} not taken")
    return outcome
