"""Deals: reserve, rent and swap, each state change authorised from verified identities.

The buyer and the seller are end users of UserService, known here only from their
verified access tokens (:func:`ads.listings.identity.end_user_id`). Who may do what:

=========  ===========  ===================================================
action     who          effect
=========  ===========  ===================================================
request    a buyer      not the seller (403 ``own_ad``); a sell ad becomes
                        ``reserved`` for them, a rent ad is asked for a
                        period, a swap offers one of the buyer's own ads
accept     the seller   a reservation marks the ad ``sold``; a swap marks
                        both ads ``sold``; a rent books the period
decline    the seller   a reserved ad is ``active`` again
cancel     the buyer    likewise, while the deal is pending
=========  ===========  ===================================================

When an accepted deal sells an ad, every other pending deal for it (or offering it in
a swap) can no longer be met: it is declined in the same transaction (a
``DealEvent`` ``auto_declined`` by the seller who accepted) and its buyer is told.

A deal that is no longer pending is 409 ``not_pending``; an ad that cannot be dealt
(sold, reserved, expired) is 409 ``ad_not_available``. Every change is one
transaction with its :class:`~ads.listings.models.DealEvent` and the audit record that
``AuditMiddleware`` writes for the authenticated request; the other party is notified
through UserService after it commits (:mod:`ads.listings.notices`).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework.exceptions import APIException, PermissionDenied

from . import notices
from .models import Ad, Deal, DealEvent

__all__ = ["KIND_FOR_AD", "Conflict", "change", "request_deal"]

logger = logging.getLogger(__name__)

KIND_FOR_AD = {
    Ad.Kind.SELL: Deal.Kind.RESERVE,
    Ad.Kind.RENT: Deal.Kind.RENT,
    Ad.Kind.SWAP: Deal.Kind.SWAP,
}


class Conflict(APIException):
    status_code = 409
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


def _available(ad: Ad) -> bool:
    return ad.status == Ad.Status.ACTIVE and ad.expires_at > timezone.now()


def _record(deal: Deal, actor_id: int, action: str, before: str) -> None:
    DealEvent.objects.create(
        deal=deal, actor_id=actor_id, action=action, from_status=before, to_status=deal.status
    )
    logger.info(
        "deal %s %s by user %s: ad %s, %s -> %s",
        deal.pk,
        action,
        actor_id,
        deal.ad_id,
        before or "-",
        deal.status,
    )


def request_deal(ad_id: int, buyer_id: int, data: dict, token: str, username: str = "") -> Deal:
    """A buyer's request (``data``: validated ``DealRequestSerializer`` fields)."""
    with transaction.atomic():
        ad = Ad.objects.select_for_update().get(pk=ad_id)
        if ad.seller_id == buyer_id:
            raise PermissionDenied("You cannot make a deal for your own ad.", code="own_ad")
        if not _available(ad):
            raise Conflict(f"The ad is {ad.status}.", code="ad_not_available")
        kind = KIND_FOR_AD[ad.kind]
        mine = Deal.objects.filter(ad=ad, buyer_id=buyer_id, status=Deal.Status.PENDING)
        if mine.exists():
            raise Conflict("You already asked for this ad.", code="already_requested")
        deal = Deal(ad=ad, kind=kind, buyer_id=buyer_id, seller_id=ad.seller_id)
        deal.message = data.get("message", "")
        if kind == Deal.Kind.RESERVE:
            ad.status = Ad.Status.RESERVED
            ad.save(update_fields=["status", "updated_at"])
        elif kind == Deal.Kind.RENT:
            deal.rent_from, deal.rent_until = data["rent_from"], data["rent_until"]
            _period_free(ad, deal.rent_from, deal.rent_until)
        else:
            deal.offered_ad = _offered(data["offered_ad"], buyer_id, ad)
        deal.save()
        _record(deal, buyer_id, "requested", "")
        notices.after_commit(deal, "requested", token, username)
    return deal


def change(deal: Deal, actor_id: int, action: str, token: str, username: str = "") -> Deal:
    """``accept``/``decline`` by the seller, ``cancel`` by the buyer."""
    with transaction.atomic():
        deal = (
            Deal.objects.select_for_update(of=("self",))  # offered_ad: an outer join
            .select_related("ad", "offered_ad")
            .get(pk=deal.pk)
        )
        party = deal.buyer_id if action == "cancel" else deal.seller_id
        if actor_id != party:
            who = "buyer" if action == "cancel" else "seller"
            raise PermissionDenied(f"Only the {who} may {action} this deal.", code=f"not_the_{who}")
        if deal.status != Deal.Status.PENDING:
            raise Conflict(f"The deal is {deal.status}.", code="not_pending")
        before = deal.status
        superseded: list[Deal] = []
        if action == "accept":
            sold = _accept(deal)
            deal.status = Deal.Status.ACCEPTED
            superseded = _decline_others(deal, sold, actor_id)
        else:
            if deal.kind == Deal.Kind.RESERVE and deal.ad.status == Ad.Status.RESERVED:
                deal.ad.status = Ad.Status.ACTIVE
                deal.ad.save(update_fields=["status", "updated_at"])
            deal.status = Deal.Status.DECLINED if action == "decline" else Deal.Status.CANCELLED
        deal.decided_at = timezone.now()
        deal.save(update_fields=["status", "decided_at"])
        _record(deal, actor_id, f"{action}ed" if action != "cancel" else "cancelled", before)
        notices.after_commit(deal, deal.status, token, username)
        for other in superseded:
            if other.buyer_id != actor_id:  # users refuses a notice to the actor
                notices.after_commit(other, notices.SUPERSEDED, token, username)
    return deal


def _accept(deal: Deal) -> list[int]:
    """Apply an accepted deal; the ids of the ads it sold."""
    ad = deal.ad
    if deal.kind == Deal.Kind.RESERVE:
        ad.status = Ad.Status.SOLD
        ad.save(update_fields=["status", "updated_at"])
        return [ad.pk]
    if deal.kind == Deal.Kind.RENT:
        _period_free(ad, deal.rent_from, deal.rent_until)
        return []
    offered = Ad.objects.select_for_update().get(pk=deal.offered_ad_id)
    if not (_available(ad) and _available(offered)):
        raise Conflict("One of the two ads is no longer available.", code="ad_not_available")
    for each in (ad, offered):
        each.status = Ad.Status.SOLD
        each.save(update_fields=["status", "updated_at"])
    return [ad.pk, offered.pk]


def _decline_others(accepted: Deal, sold: list[int], actor_id: int) -> list[Deal]:
    """Decline the pending deals that ``sold`` ads can no longer meet (as the ad
    asked for, or as the ad offered in a swap); the deals declined."""
    if not sold:
        return []
    others = list(
        Deal.objects.select_for_update()
        .filter(Q(ad__in=sold) | Q(offered_ad__in=sold), status=Deal.Status.PENDING)
        .exclude(pk=accepted.pk)
        .order_by("pk")
    )
    now = timezone.now()
    for other in others:
        other.status, other.decided_at = Deal.Status.DECLINED, now
        other.save(update_fields=["status", "decided_at"])
        _record(other, actor_id, "auto_declined", Deal.Status.PENDING)
    return others


def _period_free(ad: Ad, start: dt.date, end: dt.date) -> None:
    taken = Deal.objects.filter(
        ad=ad,
        kind=Deal.Kind.RENT,
        status=Deal.Status.ACCEPTED,
        rent_from__lte=end,
        rent_until__gte=start,
    )
    if taken.exists():
        raise Conflict("The ad is already rented for part of that period.", code="period_taken")


def _offered(offered_id: int, buyer_id: int, ad: Ad) -> Ad:
    offered = Ad.objects.filter(pk=offered_id).first()
    if offered is None or offered.seller_id != buyer_id:
        raise PermissionDenied("You can only offer one of your own ads.", code="not_your_ad")
    if offered.pk == ad.pk or not _available(offered):
        raise Conflict("The ad you offer is not available.", code="ad_not_available")
    return offered
