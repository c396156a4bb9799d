"""Refresh the cached seller previews of the ads still shown, from UserService, in pages.

Sellers of active and reserved ads are read in pages of at most 100 ids (keyset
pagination by seller id); each page is one ``GET /api/v1/users/previews?ids=...`` with
scope ``users:read``; each seller's ads get the preview (or ``None`` when UserService
no longer knows the seller) and ``seller_preview_at``. Re-running it is harmless.
"""

from __future__ import annotations

import dataclasses

from django.utils import timezone

from ads.listings.models import Ad

from . import users

__all__ = ["MAX_IDS_PER_CALL", "READ_SCOPE", "PreviewRun", "refresh_seller_previews"]

READ_SCOPE = "users:read"
PREVIEWS_PATH = "api/v1/users/previews"
MAX_IDS_PER_CALL = 100  # UserService's limit per previews call
SHOWN = (Ad.Status.ACTIVE, Ad.Status.RESERVED)


@dataclasses.dataclass
class PreviewRun:
    sellers: int = 0
    pages: int = 0
    ads_updated: int = 0
    unknown_sellers: int = 0
    token_requests: int = 0


def refresh_seller_previews(page_size: int = MAX_IDS_PER_CALL) -> PreviewRun:
    """Raises :class:`~ads.jobs.users.UsersServiceUnavailable` or ``UsersServiceRefused``;
    pages already done keep their fresh previews."""
    page_size = max(1, min(page_size, MAX_IDS_PER_CALL))
    run = PreviewRun()
    manager = users.token_manager(READ_SCOPE)
    fetches_before = manager.fetch_count
    sellers = (
        Ad.objects.filter(status__in=SHOWN)
        .order_by("seller_id")
        .values_list("seller_id", flat=True)
    )
    try:
        last = 0
        while True:
            page = list(sellers.filter(seller_id__gt=last).distinct()[:page_size])
            if not page:
                break
            run.pages += 1
            run.sellers += len(page)
            response = users.call(
                READ_SCOPE, "GET", PREVIEWS_PATH, params={"ids": ",".join(map(str, page))}
            )
            previews = _previews(response)
            now = timezone.now()
            for seller_id in page:
                preview = previews.get(seller_id)
                run.unknown_sellers += preview is None
                run.ads_updated += Ad.objects.filter(seller_id=seller_id, status__in=SHOWN).update(
                    seller_preview=preview, seller_preview_at=now
                )
            last = page[-1]
    finally:
        run.token_requests = manager.fetch_count - fetches_before
    return run


def _previews(response) -> dict[int, dict]:
    try:
        return {int(item["id"]): item for item in response.json()["results"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise users.UsersServiceRefused(
            f"UserService sent unreadable previews: {exc}", response.status_code, "bad_response"
        ) from exc
