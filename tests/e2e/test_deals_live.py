"""Reserve, rent and swap across the two live services (issue 16).

People log in at users and deal at ads with their tokens; ads notifies the other party
through users as the user who acted (the token nested in ads' service JWT); users
verifies both and records the user as ``on_behalf_of``. Every change is authorised from
the verified identities and shows up in both audit logs.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.e2e.app import LAMP, anonymous, give_password, log_in
from tests.jobs.support import shell_json

pytestmark = pytest.mark.live

ADS_SPIFFE = "spiffe://fleamarket.local/service/ads"


@pytest.fixture(scope="module")
def deployment(shared_deployment):
    return shared_deployment


@pytest.fixture(scope="module")
def people(deployment):
    return {
        name: log_in(deployment, user, give_password(deployment, user))
        for name, user in (("alice", "seller01"), ("bob", "seller02"), ("carol", "seller03"))
    }


def notifications(deployment) -> list[dict]:
    return shell_json(
        deployment,
        "users",
        "import json\n"
        "from users.notifications.models import Notification\n"
        "rows = Notification.objects.order_by('id').values("
        "'user_id', 'kind', 'ad_id', 'sender', 'on_behalf_of', 'message')\n"
        'print("JSON:" + json.dumps(list(rows)))',
    )


def audit(deployment, service: str, path_part: str) -> list[dict]:
    return shell_json(
        deployment,
        service,
        "import json\n"
        "from s2s_auth.models import AuditRecord\n"
        f"rows = AuditRecord.objects.filter(path__contains={path_part!r}).order_by('id').values("
        "'mechanism', 'principal', 'end_user', 'outcome', 'reason', 'method', 'path')\n"
        'print("JSON:" + json.dumps(list(rows)))',
    )


def new_ad(person, **fields) -> dict:
    response = person.ads("POST", "/api/v1/ads/", json={**LAMP, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_reserve_notify_accept_sold(deployment, people):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    ad = new_ad(alice, title="Lamp to sell")

    response = bob.ads("POST", f"/api/v1/ads/{ad['id']}/deals/", json={"message": "Friday?"})
    assert response.status_code == 201, response.text
    deal = response.json()
    assert (deal["buyer_id"], deal["seller_id"], deal["status"]) == (bob.id, alice.id, "pending")
    assert alice.ads("GET", f"/api/v1/ads/{ad['id']}/").json()["status"] == "reserved"
    # The seller heard of it through users, from ads, for bob.
    notice = notifications(deployment)[-1]
    assert notice == {
        "user_id": alice.id,
        "kind": "deal_requested",
        "ad_id": ad["id"],
        "sender": ADS_SPIFFE,
        "on_behalf_of": str(bob.id),
        "message": 'seller02 asks to buy your ad "Lamp to sell".',
    }
    assert bob.ads("GET", f"/api/v1/deals/{deal['id']}/").json()["seller_notified_at"]

    # Nobody but the seller decides; a third person does not even see the deal.
    assert carol.ads("POST", f"/api/v1/deals/{deal['id']}/accept/").status_code == 404
    refused = bob.ads("POST", f"/api/v1/deals/{deal['id']}/accept/")
    assert (refused.status_code, refused.json()["error"]) == (403, "not_the_seller")
    assert anonymous(deployment, "POST", f"/api/v1/deals/{deal['id']}/accept/").status_code == 401

    accepted = alice.ads("POST", f"/api/v1/deals/{deal['id']}/accept/")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert anonymous(deployment, "GET", f"/api/v1/ads/{ad['id']}/").json()["status"] == "sold"
    notice = notifications(deployment)[-1]
    assert (notice["user_id"], notice["kind"], notice["on_behalf_of"]) == (
        bob.id,
        "deal_accepted",
        str(alice.id),
    )

    # Audited at both ends: ads records who changed what; users, the call made for them.
    at_ads = audit(deployment, "ads", f"/api/v1/deals/{deal['id']}/accept/")
    assert {
        "mechanism": "end_user_token",
        "end_user": str(alice.id),
        "outcome": "accepted",
        "method": "POST",
    }.items() <= at_ads[-1].items()
    assert any(r["outcome"] == "refused" and r["reason"] == "not_the_seller" for r in at_ads)
    at_users = audit(deployment, "users", f"/api/v1/users/{bob.id}/notifications")
    assert any(
        r["principal"] == ADS_SPIFFE
        and r["end_user"] == str(alice.id)
        and r["mechanism"] == "service_jwt"
        and r["outcome"] == "accepted"
        for r in at_users
    ), at_users


def test_rent_for_a_period_then_declined(deployment, people):
    alice, bob = people["alice"], people["bob"]
    ad = new_ad(alice, title="Drill", kind="rent")
    today = dt.date.today()
    period = {"rent_from": str(today), "rent_until": str(today + dt.timedelta(days=2))}
    deal = bob.ads("POST", f"/api/v1/ads/{ad['id']}/deals/", json=period).json()
    assert (deal["kind"], deal["rent_from"], deal["rent_until"]) == (
        "rent",
        period["rent_from"],
        period["rent_until"],
    )
    declined = alice.ads("POST", f"/api/v1/deals/{deal['id']}/decline/")
    assert declined.json()["status"] == "declined"
    again = alice.ads("POST", f"/api/v1/deals/{deal['id']}/accept/")
    assert (again.status_code, again.json()["error"]) == (409, "not_pending")
    notice = notifications(deployment)[-1]
    assert (notice["user_id"], notice["kind"]) == (bob.id, "deal_declined")


def test_swap_one_ad_for_another(deployment, people):
    alice, bob = people["alice"], people["bob"]
    wanted = new_ad(alice, title="Board games", kind="swap")
    mine = new_ad(bob, title="Vinyl records", kind="swap")
    not_mine = bob.ads(
        "POST", f"/api/v1/ads/{wanted['id']}/deals/", json={"offered_ad": wanted["id"]}
    )
    assert (not_mine.status_code, not_mine.json()["error"]) == (403, "not_your_ad")
    deal = bob.ads(
        "POST", f"/api/v1/ads/{wanted['id']}/deals/", json={"offered_ad": mine["id"]}
    ).json()
    assert alice.ads("POST", f"/api/v1/deals/{deal['id']}/accept/").status_code == 200
    for ad in (wanted, mine):
        assert anonymous(deployment, "GET", f"/api/v1/ads/{ad['id']}/").json()["status"] == "sold"
