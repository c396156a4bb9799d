"""Telling the other party of a deal, through UserService, as the user who acted.

ads calls ``POST /api/v1/users/{id}/notifications`` with its own credentials (mTLS and
a service JWT; scope ``users:notify``) in the context of the end user who made the
change (``end_user_context``): the client of :mod:`.sellers` exchanges that user's
token at the identity service (RFC 8693) for one minted for UserService alone, naming
ads in ``act`` (``USERS_SERVICE_USER_CONTEXT="forward"``: the user's own token, for a
UserService that cannot exchange). UserService verifies both and records the user as
``on_behalf_of``. The call is made after the change committed, never inside the
transaction: a slow UserService must not hold ads' database. A notice that UserService
did not take leaves ``seller_notified_at``/``buyer_notified_at`` empty and is logged;
the deal stands. The circuit breaker of :mod:`.sellers` applies here too.

A notice UserService could not take for a transient reason (unreachable, 5xx, 429,
the breaker open) is retried by the Celery task ``jobs.retry_deal_notice`` with
bounded exponential backoff, while the acting user's token is valid: the token waits
in the shared cache (never in the task message, its logs or results) until it expires.
A refusal (any other 4xx, e.g. an expired token) is not retried. The
``Idempotency-Key`` (``deal:<id>:<event>``) makes a repeat harmless.
"""

from __future__ import annotations

import logging
import time

import jwt
import requests
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from s2s_auth.client.auth import end_user_context

from .models import Deal
from .sellers import users_breaker, users_client

__all__ = ["SUPERSEDED", "after_commit", "deliver", "retry", "send"]

logger = logging.getLogger(__name__)

#: What each change tells, and to whom: (recipient role, notification kind, text).
NOTICES = {
    "requested": ("seller", "deal_requested", '{who} asks to {verb} your ad "{title}".'),
    Deal.Status.ACCEPTED: ("buyer", "deal_accepted", 'The seller accepted: {verb} "{title}".'),
    Deal.Status.DECLINED: ("buyer", "deal_declined", 'The seller declined: {verb} "{title}".'),
    Deal.Status.CANCELLED: ("seller", "deal_cancelled", '{who} cancelled: {verb} "{title}".'),
}
#: A pending deal declined because another deal sold the ad (or the ad offered).
SUPERSEDED = "superseded"
NOTICES[SUPERSEDED] = (
    "buyer",
    "deal_declined",
    'Declined, an ad in it was sold in another deal: {verb} "{title}".',
)
#: What :func:`send` says about a notice.
SENT, RETRY, REFUSED = "sent", "retry", "refused"
#: The first retry waits this long; the task's backoff takes it from there.
FIRST_RETRY_SECONDS = 5
VERBS = {Deal.Kind.RESERVE: "buy", Deal.Kind.RENT: "rent", Deal.Kind.SWAP: "swap for"}


def after_commit(deal: Deal, event: str, token: str, username: str = "") -> None:
    """Deliver the notice of ``event`` once the current transaction has committed."""
    transaction.on_commit(lambda: deliver(deal.pk, event, token, username))


def deliver(deal_id: int, event: str, token: str, username: str = "") -> bool:
    """The first attempt, after commit; True when UserService took the notice. One not
    taken for a transient reason is handed to ``jobs.retry_deal_notice``."""
    outcome = send(deal_id, event, token, username)
    if outcome == RETRY:
        schedule_retry(deal_id, event, token, username)
    return outcome == SENT


def retry(deal_id: int, event: str, username: str = "") -> str:
    """One retry (the task's body): SENT, RETRY, REFUSED, or "expired" when the
    acting user's token is gone (expired), so nothing can be sent for them."""
    token = cache.get(_token_key(deal_id, event))
    if not token:
        logger.warning("deal %s: notice %s given up: the user's token expired", deal_id, event)
        return "expired"
    outcome = send(deal_id, event, token, username)
    if outcome != RETRY:
        cache.delete(_token_key(deal_id, event))
    return outcome


def schedule_retry(deal_id: int, event: str, token: str, username: str) -> None:
    ttl = _token_ttl(token)
    if ttl <= FIRST_RETRY_SECONDS:
        logger.warning("deal %s: notice %s not retried: the user's token expires", deal_id, event)
        return
    from ads.jobs.tasks import retry_deal_notice  # the jobs import listings, not back

    try:
        cache.set(_token_key(deal_id, event), token, timeout=ttl)
        retry_deal_notice.apply_async((deal_id, event, username), countdown=FIRST_RETRY_SECONDS)
    except Exception as exc:
        logger.warning(
            "deal %s: notice %s not queued for retry: %s", deal_id, event, type(exc).__name__
        )
    else:
        logger.info("deal %s: notice %s queued for retry", deal_id, event)


def _token_key(deal_id: int, event: str) -> str:
    return f"ads:deal-notice:{deal_id}:{event}"


def _token_ttl(token: str) -> int:
    """Seconds until the token's ``exp`` (read only to time the retries: UserService
    verifies the token itself), 0 if it has none."""
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return 0
    return int(exp - time.time()) if isinstance(exp, int | float) else 0


def send(deal_id: int, event: str, token: str, username: str = "") -> str:
    """One notification to the other party: SENT, RETRY (transient) or REFUSED."""
    deal = Deal.objects.select_related("ad").get(pk=deal_id)
    role, kind, text = NOTICES[event]
    recipient = deal.seller_id if role == "seller" else deal.buyer_id
    body = {
        "kind": kind,
        "message": text.format(
            who=username or "A buyer", verb=VERBS[deal.kind], title=deal.ad.title
        ),
        "ad_id": deal.ad_id,
    }
    if not users_breaker.allow():
        logger.warning("deal %s: notice %s not sent: circuit users is open", deal_id, kind)
        return RETRY
    try:
        with end_user_context(token):
            response = users_client().post(
                f"api/v1/users/{recipient}/notifications",
                json=body,
                headers={"Idempotency-Key": f"deal:{deal_id}:{event}"},
            )
    except requests.RequestException as exc:
        users_breaker.failure()
        logger.warning("deal %s: notice %s not sent: %s", deal_id, kind, type(exc).__name__)
        return RETRY
    transient = response.status_code >= 500 or response.status_code == 429
    if transient:
        users_breaker.failure()
    else:
        users_breaker.success()
    if response.status_code not in (200, 201):
        logger.warning(
            "deal %s: notice %s refused: HTTP %s %s",
            deal_id,
            kind,
            response.status_code,
            response.text[:200],
        )
        return RETRY if transient else REFUSED
    field = f"{role}_notified_at"
    Deal.objects.filter(pk=deal_id).update(**{field: timezone.now()})
    return SENT
