"""``POST /api/v1/users/{id}/notifications``: services notify people, idempotently."""

from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from s2s_auth.credentials.principals import ensure_principal
from tests.hostile_json import HOSTILE_BODIES
from users.notifications.models import Notification

WORKER = "spiffe://fleamarket.local/service/worker"
BODY = {"kind": "ad_expired", "message": 'Your ad "Lamp" expired.', "ad_id": 42}


def url(user_id: int) -> str:
    return f"/api/v1/users/{user_id}/notifications"


@pytest.fixture
def person(db):
    return get_user_model().objects.create_user("seller01")


@pytest.fixture
def as_service(client, ca, settings, db):
    """The test client presenting the certificate of a service (mTLS)."""
    settings.S2S_AUTH = {**settings.S2S_AUTH, "PKI_DIR": str(ca.directory)}

    def use(name: str, *scopes: str):
        ensure_principal(name, list(scopes))
        client.defaults["SSL_CLIENT_CERT"] = ca.issue(name).cert_path.read_text()
        return client

    return use


@pytest.fixture
def worker(as_service):
    return as_service("worker", "users:read", "users:notify")


def post(client, user_id, body=BODY, key="ad-expired:42:1", **headers):
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(url(user_id), body, content_type="application/json", **headers)


def test_creates_a_notification_sent_by_the_calling_service(worker, person):
    response = post(worker, person.pk)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data == {
        "id": data["id"],
        "user_id": person.pk,
        "kind": "ad_expired",
        "message": BODY["message"],
        "ad_id": 42,
        "sender": WORKER,
        "on_behalf_of": "",
        "created": data["created"],
        "read_at": None,
    }
    stored = Notification.objects.get()
    assert (stored.user, stored.sender, stored.idempotency_key) == (
        person,
        WORKER,
        "ad-expired:42:1",
    )


def test_a_repeat_returns_the_existing_notification(worker, person):
    first = post(worker, person.pk)
    again = post(worker, person.pk)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Notification.objects.count() == 1


def test_the_same_key_for_a_different_request_is_422(worker, person):
    post(worker, person.pk)
    response = post(worker, person.pk, {**BODY, "message": "something else"})
    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"
    assert Notification.objects.count() == 1


def test_keys_are_per_sender(as_service, person):
    assert post(as_service("worker", "users:notify"), person.pk).status_code == 201
    assert post(as_service("billing", "users:notify"), person.pk).status_code == 201
    assert sorted(Notification.objects.values_list("sender", flat=True)) == [
        "spiffe://fleamarket.local/service/billing",
        WORKER,
    ]


def test_without_a_key_every_request_creates_one(worker, person):
    assert post(worker, person.pk, key=None).status_code == 201
    assert post(worker, person.pk, key=None).status_code == 201
    assert Notification.objects.filter(idempotency_key="").count() == 2


def test_a_concurrent_duplicate_loses_the_race_gracefully(worker, person):
    """Two requests with one key that both miss the lookup: the unique constraint
    refuses the second insert, which then answers with the first one's row."""
    first = post(worker, person.pk)
    with mock.patch.object(QuerySet, "first", return_value=None):
        second = post(worker, person.pk)
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert Notification.objects.count() == 1


def test_unknown_user_is_404(worker, db):
    response = post(worker, 999_999)
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_user"
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    ("body", "key", "field"),
    [
        ({**BODY, "kind": "spam"}, "k1", "kind"),
        ({"kind": "ad_expired"}, "k2", "message"),
        ({**BODY, "ad_id": -1}, "k3", "ad_id"),
        (BODY, "has space", "Idempotency-Key"),
        (BODY, "x" * 256, "Idempotency-Key"),
    ],
)
def test_bad_requests_are_400_with_the_field(worker, person, body, key, field):
    response = post(worker, person.pk, body, key=key)
    assert response.status_code == 400
    assert field in response.json()


def test_sender_cannot_be_chosen_by_the_caller(worker, person):
    post(worker, person.pk, {**BODY, "sender": "spiffe://fleamarket.local/service/users"})
    assert Notification.objects.get().sender == WORKER


def test_without_credentials_is_401(client, person):
    response = post(client, person.pk)
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_a_service_without_users_notify_is_403(as_service, person):
    response = post(as_service("ads", "users:read"), person.pk)
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    assert not Notification.objects.exists()


def test_admin_lists_notifications(admin_client, person):
    Notification.objects.create(user=person, kind="ad_expired", message="m", sender=WORKER)
    response = admin_client.get("/admin/notifications/notification/")
    assert response.status_code == 200
    assert WORKER in response.content.decode()


@pytest.mark.parametrize(("body", "code"), HOSTILE_BODIES.values(), ids=HOSTILE_BODIES)
def test_hostile_json_is_400_with_a_reason(worker, person, body, code):
    worker.raise_request_exception = False
    response = worker.generic(
        "POST", url(person.pk), body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"] == code
    assert not Notification.objects.exists()


@pytest.mark.parametrize("kind", ["deal_requested", "deal_accepted", "deal_declined"])
def test_a_deal_notice_needs_the_user_it_is_sent_for(worker, person, kind):
    """Over mTLS alone there is no user context: nobody acted, so no deal notice."""
    response = post(worker, person.pk, {**BODY, "kind": kind}, key=None)
    assert response.status_code == 403
    assert response.json()["error"] == "end_user_required"
    assert not Notification.objects.exists()
