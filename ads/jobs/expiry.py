"""Expire ads past their ``expires_at`` and tell each seller, through UserService.

Two steps, each safe to repeat:

1. :func:`expire_stale_ads` marks active ads whose ``expires_at`` has passed as
   expired, stamping ``expired_at`` (and clearing ``expiry_notified_at``: an ad renewed
   and expired again deserves a new notice).
2. :func:`notify_sellers` sends the pending notices (expired by the job, not yet
   notified), in batches, one ``POST /api/v1/users/{seller}/notifications`` per ad,
   and stamps ``expiry_notified_at`` after each accepted one.

Idempotency: each notice carries ``Idempotency-Key: ad-expired:<ad id>:<expired_at>``,
which is the same for every attempt at one expiry and different for the next expiry
of the same ad. UserService keeps one notification per (sender, key) and answers a
repeated key with the notification it already has (200 instead of 201). So a task that
crashed after UserService accepted a notice but before the ad was stamped, a retry
after a 5xx, a second worker running the same job, or a manual re-run never notify a
seller twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from django.utils import timezone

from ads.listings.models import Ad

from . import users

__all__ = [
    "NOTICE_KIND",
    "NOTIFY_SCOPE",
    "ExpiryRun",
    "expire_stale_ads",
    "idempotency_key",
    "notify_sellers",
    "pending_notices",
]

logger = logging.getLogger(__name__)

NOTIFY_SCOPE = "users:notify"
NOTICE_KIND = "ad_expired"


@dataclasses.dataclass
class ExpiryRun:
    """What one run did; the task returns it as a dict."""

    expired: int = 0  # ads this run marked expired
    notified: int = 0  # notifications UserService created (201)
    already_notified: int = 0  # notices UserService already had (200: a repeat)
    unknown_sellers: int = 0  # sellers UserService does not know (404): given up
    batches: int = 0
    token_requests: int = 0  # requests to the token endpoint during the run


def expire_stale_ads(now=None) -> int:
    """Mark active ads past ``expires_at`` as expired; the number of ads marked."""
    now = now or timezone.now()
    return Ad.objects.filter(status=Ad.Status.ACTIVE, expires_at__lte=now).update(
        status=Ad.Status.EXPIRED, expired_at=now, expiry_notified_at=None
    )


def pending_notices():
    """Ads the job expired whose seller has not been notified yet, oldest id first."""
    return Ad.objects.filter(
        status=Ad.Status.EXPIRED, expired_at__isnull=False, expiry_notified_at__isnull=True
    ).order_by("id")


def idempotency_key(ad: Ad) -> str:
    """The same for every attempt at notifying this expiry of this ad."""
    expired = ad.expired_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"ad-expired:{ad.pk}:{expired}"


def notice(ad: Ad) -> dict:
    return {
        "kind": NOTICE_KIND,
        "ad_id": ad.pk,
        "message": (
            f'Your ad "{ad.title}" expired on {ad.expires_at:%Y-%m-%d} and is no longer '
            "shown. Renew it to show it again."
        ),
    }


def notify_sellers(batch_size: int = 100) -> ExpiryRun:
    """Send every pending notice, ``batch_size`` ads per database query.

    Raises :class:`~ads.jobs.users.UsersServiceUnavailable` (retry later: what was
    sent is stamped, what was not stays pending) or
    :class:`~ads.jobs.users.UsersServiceRefused`.
    """
    run = ExpiryRun()
    manager = users.token_manager(NOTIFY_SCOPE)
    fetches_before = manager.fetch_count
    try:
        last_id = 0
        while True:
            batch = list(pending_notices().filter(id__gt=last_id)[:batch_size])
            if not batch:
                break
            run.batches += 1
            for ad in batch:
                _notify(ad, run)
            last_id = batch[-1].pk
    finally:
        run.token_requests = manager.fetch_count - fetches_before
    return run


def _notify(ad: Ad, run: ExpiryRun) -> None:
    response = users.call(
        NOTIFY_SCOPE,
        "POST",
        f"api/v1/users/{ad.seller_id}/notifications",
        json=notice(ad),
        headers={"Idempotency-Key": idempotency_key(ad)},
        expected=(200, 201, 404),
    )
    if response.status_code == 201:
        run.notified += 1
    elif response.status_code == 200:
        run.already_notified += 1
    else:
        error, detail = users.error_of(response)
        if error != "unknown_user":  # not the endpoint's answer: a wrong URL, a proxy
            raise users.refused(f"POST {response.request.path_url}", 404, error, detail)
        run.unknown_sellers += 1
        logger.warning(
            "ad %s expired, but its seller %s is unknown to UserService; no notice sent",
            ad.pk,
            ad.seller_id,
        )
    Ad.objects.filter(pk=ad.pk, expired_at=ad.expired_at).update(expiry_notified_at=timezone.now())
