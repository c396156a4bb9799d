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

from . import expiry, seller_previews
from .users import UsersServiceUnavailable

__all__ = ["UsersServiceJob", "expire_stale_ads", "refresh_seller_previews"]

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
