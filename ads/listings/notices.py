"""Telling the other party of a deal, through UserService, as the user who acted.

ads calls ``POST /api/v1/users/{id}/notifications`` with its own credentials (mTLS and
a service JWT; scope ``users:notify``) and, nested in the service JWT, the access token
of the end user who made the change (``end_user_context``): UserService verifies both
and records the user as ``on_behalf_of``. (Token exchange, RFC 8693, would replace the
forwarded token with one minted for UserService alone; the identity service does not
offer it yet.) The call is made after the change committed, never inside the
transaction: a slow UserService must not hold ads' database. A notice that UserService
did not take leaves ``seller_notified_at``/``buyer_notified_at`` empty and is logged;
the deal stands. The circuit breaker of :mod:`.sellers` applies here too.
"""

from __future__ import annotations

import logging

import requests
from django.db import transaction
from django.utils import timezone

from s2s_auth.client.auth import end_user_context

from .models import Deal
from .sellers import users_breaker, users_client

__all__ = ["SUPERSEDED", "after_commit", "deliver"]

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
VERBS = {Deal.Kind.RESERVE: "buy", Deal.Kind.RENT: "rent", Deal.Kind.SWAP: "swap for"}


def after_commit(deal: Deal, event: str, token: str, username: str = "") -> None:
    """Deliver the notice of ``event`` once the current transaction has committed."""
    transaction.on_commit(lambda: deliver(deal.pk, event, token, username))


def deliver(deal_id: int, event: str, token: str, username: str = "") -> bool:
    """One notification to the other party; True when UserService took it."""
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
        return False
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
        return False
    if response.status_code >= 500 or response.status_code == 429:
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
        return False
    field = f"{role}_notified_at"
    Deal.objects.filter(pk=deal_id).update(**{field: timezone.now()})
    return True
