"""Deals at ads: who may do what, and what each change does to the ads (issue 16).

UserService is unreachable here (its notices are tested live, tests/e2e/test_deals_live.py):
the deal stands, the notice is logged as not sent."""

import datetime as dt
import logging

import pytest
from django.utils import timezone

from ads.listings.models import Ad, Deal, DealEvent
from tests.live import free_port

SELLER, BUYER, OTHER = 7, 8, 9


@pytest.fixture(autouse=True)
def users_unreachable(users_at):
    users_at(f"http://127.0.0.1:{free_port()}")


def make_ad(kind="sell", seller_id=SELLER, **fields):
    return Ad.objects.create(
        title=f"A {kind} thing",
        price="5.00",
        kind=kind,
        latitude=52.5,
        longitude=13.4,
        seller_id=seller_id,
        **fields,
    )


def ask(as_end_user, ad, who=BUYER, **body):
    return as_end_user(who).post(f"/api/v1/ads/{ad.pk}/deals/", body, format="json")


def act(as_end_user, deal_id, verb, who):
    return as_end_user(who).post(f"/api/v1/deals/{deal_id}/{verb}/", format="json")


def test_reserve_then_accept_marks_the_ad_sold(as_end_user, django_capture_on_commit_callbacks):
    ad = make_ad()
    with django_capture_on_commit_callbacks(execute=True):
        response = ask(as_end_user, ad, message="Can I pick it up Friday?")
    assert response.status_code == 201, response.json()
    deal = response.json()
    assert (deal["kind"], deal["status"], deal["buyer_id"], deal["seller_id"]) == (
        "reserve",
        "pending",
        BUYER,
        SELLER,
    )
    assert deal["seller_notified_at"] is None  # users is down: the deal stands
    ad.refresh_from_db()
    assert ad.status == Ad.Status.RESERVED
    response = act(as_end_user, deal["id"], "accept", SELLER)
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "accepted"
    ad.refresh_from_db()
    assert ad.status == Ad.Status.SOLD
    history = list(DealEvent.objects.values_list("actor_id", "action", "from_status", "to_status"))
    assert history == [
        (BUYER, "requested", "", "pending"),
        (SELLER, "accepted", "pending", "accepted"),
    ]


def test_a_notice_that_users_did_not_take_is_logged(
    as_end_user, django_capture_on_commit_callbacks, caplog
):
    with (
        caplog.at_level(logging.WARNING, logger="ads.listings.notices"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        deal_id = ask(as_end_user, make_ad()).json()["id"]
    assert f"deal {deal_id}: notice deal_requested not sent: ConnectionError" in caplog.text


@pytest.mark.parametrize("verb", ["decline", "cancel"])
def test_decline_or_cancel_frees_a_reserved_ad(as_end_user, verb):
    ad = make_ad()
    deal = ask(as_end_user, ad).json()
    who = SELLER if verb == "decline" else BUYER
    response = act(as_end_user, deal["id"], verb, who)
    assert response.status_code == 200
    assert response.json()["status"] == {"decline": "declined", "cancel": "cancelled"}[verb]
    ad.refresh_from_db()
    assert ad.status == Ad.Status.ACTIVE


@pytest.mark.parametrize(
    ("verb", "who", "status", "code"),
    [
        ("accept", BUYER, 403, "not_the_seller"),
        ("decline", BUYER, 403, "not_the_seller"),
        ("cancel", SELLER, 403, "not_the_buyer"),
        ("accept", OTHER, 404, "not_found"),
    ],
)
def test_each_change_is_for_one_party_only(as_end_user, verb, who, status, code):
    ad = make_ad()
    deal = ask(as_end_user, ad).json()
    response = act(as_end_user, deal["id"], verb, who)
    assert response.status_code == status
    assert response.json()["error"] == code
    assert Deal.objects.get(pk=deal["id"]).status == "pending"
    ad.refresh_from_db()
    assert ad.status == Ad.Status.RESERVED


def test_a_decided_deal_cannot_change_again(as_end_user):
    deal = ask(as_end_user, make_ad()).json()
    act(as_end_user, deal["id"], "decline", SELLER)
    response = act(as_end_user, deal["id"], "accept", SELLER)
    assert response.status_code == 409
    assert response.json()["error"] == "not_pending"


def test_the_seller_cannot_deal_their_own_ad(as_end_user):
    response = ask(as_end_user, make_ad(), who=SELLER)
    assert response.status_code == 403
    assert response.json()["error"] == "own_ad"


@pytest.mark.parametrize(
    "fields",
    [{"status": Ad.Status.SOLD}, {"expires_at": timezone.now() - dt.timedelta(minutes=1)}],
)
def test_an_ad_that_is_not_available_is_409(as_end_user, fields):
    response = ask(as_end_user, make_ad(**fields))
    assert response.status_code == 409
    assert response.json()["error"] == "ad_not_available"


def test_a_reserved_ad_cannot_be_reserved_again(as_end_user):
    ad = make_ad()
    ask(as_end_user, ad)
    response = ask(as_end_user, ad, who=OTHER)
    assert response.status_code == 409
    assert response.json()["error"] == "ad_not_available"


def test_rent_for_a_period_and_overlaps_are_refused(as_end_user):
    ad = make_ad("rent")
    today = timezone.localdate()
    period = {"rent_from": str(today), "rent_until": str(today + dt.timedelta(days=3))}
    first = ask(as_end_user, ad, **period).json()
    assert (first["kind"], first["rent_from"]) == ("rent", period["rent_from"])
    overlapping = ask(
        as_end_user,
        ad,
        who=OTHER,
        rent_from=str(today + dt.timedelta(days=2)),
        rent_until=str(today + dt.timedelta(days=5)),
    ).json()
    assert act(as_end_user, first["id"], "accept", SELLER).status_code == 200
    ad.refresh_from_db()
    assert ad.status == Ad.Status.ACTIVE  # rented for a period, still on offer
    response = act(as_end_user, overlapping["id"], "accept", SELLER)
    assert response.status_code == 409
    assert response.json()["error"] == "period_taken"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "rent_from"),
        ({"rent_from": "2020-01-01", "rent_until": "2020-01-02"}, "rent_from"),
        ({"rent_from": "today", "rent_until": "today+100"}, "rent_until"),
        ({"rent_from": "today+2", "rent_until": "today"}, "rent_until"),
    ],
)
def test_a_bad_rental_period_is_400(as_end_user, body, field):
    today = timezone.localdate()

    def day(value):
        if not value.startswith("today"):
            return value
        return str(today + dt.timedelta(days=int(value[6:] or 0)))

    response = ask(as_end_user, make_ad("rent"), **{k: day(v) for k, v in body.items()})
    assert response.status_code == 400
    assert field in response.json()


def test_swap_offers_an_own_ad_and_accepting_marks_both_sold(as_end_user):
    wanted = make_ad("swap")
    offered = make_ad("swap", seller_id=BUYER)
    deal = ask(as_end_user, wanted, offered_ad=offered.pk).json()
    assert (deal["kind"], deal["offered_ad"]) == ("swap", offered.pk)
    assert act(as_end_user, deal["id"], "accept", SELLER).status_code == 200
    assert set(
        Ad.objects.filter(pk__in=[wanted.pk, offered.pk]).values_list("status", flat=True)
    ) == {"sold"}


def test_selling_an_ad_declines_the_other_pending_deals_for_it(
    as_end_user, django_capture_on_commit_callbacks, caplog
):
    """A swap accepted: the other offers for either ad are declined, their buyers told."""
    wanted = make_ad("swap")
    offered = make_ad("swap", seller_id=BUYER)
    elsewhere = make_ad("swap", seller_id=10)  # BUYER offers the same ad there too
    other_offer = make_ad("swap", seller_id=OTHER)
    untouched = make_ad("swap", seller_id=10)
    deal = ask(as_end_user, wanted, offered_ad=offered.pk).json()
    rival = ask(as_end_user, wanted, who=OTHER, offered_ad=other_offer.pk).json()
    for_offered = ask(as_end_user, offered, who=OTHER, offered_ad=other_offer.pk).json()
    offered_twice = ask(as_end_user, elsewhere, offered_ad=offered.pk).json()
    unrelated = ask(as_end_user, untouched, who=OTHER, offered_ad=other_offer.pk).json()
    with (
        caplog.at_level(logging.WARNING, logger="ads.listings.notices"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert act(as_end_user, deal["id"], "accept", SELLER).status_code == 200
    declined = [rival["id"], for_offered["id"], offered_twice["id"]]
    statuses = dict(Deal.objects.values_list("id", "status"))
    assert [statuses[i] for i in declined] == ["declined"] * 3
    assert statuses[deal["id"]] == "accepted"
    assert statuses[unrelated["id"]] == "pending"
    events = DealEvent.objects.filter(action="auto_declined")
    assert sorted(events.values_list("deal_id", "actor_id", "from_status", "to_status")) == [
        (i, SELLER, "pending", "declined") for i in sorted(declined)
    ]
    for i in declined:  # each buyer is told (users is down here: logged, retried)
        assert f"deal {i}: notice deal_declined not sent" in caplog.text
    # The declined deals are decided: their parties cannot act on them any more.
    assert act(as_end_user, rival["id"], "cancel", OTHER).json()["error"] == "not_pending"


def test_a_sold_reservation_declines_swaps_offering_the_ad(
    as_end_user, django_capture_on_commit_callbacks, caplog
):
    """BUYER offered a sell ad in a swap, then sold it to OTHER: the swap is declined,
    and nobody is told of their own action."""
    lamp = make_ad("sell", seller_id=BUYER)
    swap = ask(as_end_user, make_ad("swap"), offered_ad=lamp.pk).json()
    reservation = ask(as_end_user, lamp, who=OTHER).json()
    with (
        caplog.at_level(logging.WARNING, logger="ads.listings.notices"),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        assert act(as_end_user, reservation["id"], "accept", BUYER).status_code == 200
    assert Deal.objects.get(pk=swap["id"]).status == "declined"
    assert len(callbacks) == 1  # the reservation's notice to OTHER only
    assert f"deal {swap['id']}: notice" not in caplog.text


def test_swap_with_someone_elses_ad_is_403(as_end_user):
    response = ask(as_end_user, make_ad("swap"), offered_ad=make_ad("swap", seller_id=OTHER).pk)
    assert response.status_code == 403
    assert response.json()["error"] == "not_your_ad"


def test_swap_needs_an_offer(as_end_user):
    response = ask(as_end_user, make_ad("swap"))
    assert response.status_code == 400
    assert "offered_ad" in response.json()


def test_deals_are_seen_by_their_parties_only(as_end_user):
    deal = ask(as_end_user, make_ad()).json()
    for who in (BUYER, SELLER):
        assert [d["id"] for d in as_end_user(who).get("/api/v1/deals/").json()["results"]] == [
            deal["id"]
        ]
    assert as_end_user(OTHER).get("/api/v1/deals/").json()["results"] == []
    assert as_end_user(OTHER).get(f"/api/v1/deals/{deal['id']}/").status_code == 404


def test_anonymous_and_local_accounts_make_no_deals(client, db, as_end_user):
    from django.contrib.auth import get_user_model

    ad = make_ad()
    url = f"/api/v1/ads/{ad.pk}/deals/"
    assert client.post(url, {}, content_type="application/json").status_code == 401
    assert client.get("/api/v1/deals/").status_code == 401
    client.force_login(get_user_model().objects.create_superuser("admin", password="x" * 12))
    response = client.post(url, {}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"] == "end_user_required"
