"""``jobs.refresh_seller_previews`` against a live UserService, in pages."""

import pytest

from ads.jobs.tasks import refresh_seller_previews
from ads.listings.models import Ad
from tests.jobs.test_expire_stale_ads import make_ad

pytestmark = pytest.mark.live


def test_previews_are_cached_page_by_page_with_one_token(users, django_assert_max_num_queries):
    shown = [make_ad(seller, days=5) for seller in (1, 2, 2, 3, 4)]
    reserved = make_ad(5, days=5, status=Ad.Status.RESERVED)
    gone = make_ad(987654, days=5)
    expired = make_ad(6, days=-1, status=Ad.Status.EXPIRED)

    summary = refresh_seller_previews.apply(kwargs={"page_size": 2}).get()

    assert summary == {
        "sellers": 6,
        "pages": 3,
        "ads_updated": 7,
        "unknown_sellers": 1,
        "token_requests": 1,
    }
    for ad in [*shown, reserved]:
        ad.refresh_from_db()
        assert ad.seller_preview["id"] == ad.seller_id
        assert set(ad.seller_preview) == {"id", "display_name", "city", "rating", "member_since"}
        assert ad.seller_preview_at is not None
    gone.refresh_from_db()
    assert gone.seller_preview is None and gone.seller_preview_at is not None
    expired.refresh_from_db()
    assert expired.seller_preview_at is None  # not shown: not refreshed


def test_page_size_is_capped_at_what_userservice_accepts(users):
    make_ad(1, days=5)
    summary = refresh_seller_previews.apply(kwargs={"page_size": 10_000}).get()
    assert (summary["pages"], summary["sellers"]) == (1, 1)
