import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from s2s_auth.credentials.principals import ensure_principal
from users.people.models import Profile
from users.people.serializers import MAX_PREVIEW_IDS

PREVIEWS = "/api/v1/users/previews"


@pytest.fixture
def client(client, ca, settings, db):
    """A test client presenting the certificate of "ads", which has users:read."""
    settings.S2S_AUTH = {**settings.S2S_AUTH, "PKI_DIR": str(ca.directory)}
    pem = ca.issue("ads").cert_path.read_text()
    ensure_principal("ads", ["users:read"])
    client.defaults["SSL_CLIENT_CERT"] = pem
    return client


def test_anonymous_caller_is_401(client):
    del client.defaults["SSL_CLIENT_CERT"]
    response = client.get(PREVIEWS, {"ids": "1"})
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_service_without_users_read_is_403(client, ca):
    client.defaults["SSL_CLIENT_CERT"] = ca.issue("worker").cert_path.read_text()
    ensure_principal("worker")
    response = client.get(PREVIEWS, {"ids": "1"})
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


@pytest.fixture
def people(db):
    call_command("seed_demo", verbosity=0)
    return list(Profile.objects.order_by("user_id"))


def test_returns_previews_for_known_ids_and_skips_unknown(client, people):
    response = client.get(PREVIEWS, {"ids": f"{people[0].user_id},{people[4].user_id},999999"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"] for r in results] == [people[0].user_id, people[4].user_id]
    assert results[0] == {
        "id": people[0].user_id,
        "display_name": people[0].display_name,
        "city": people[0].city,
        "rating": str(people[0].rating),
        "member_since": people[0].member_since.isoformat(),
    }


def test_hundred_ids_take_one_query(client, people):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ids = ",".join(str(i) for i in range(1, MAX_PREVIEW_IDS + 1))
    client.get(PREVIEWS, {"ids": "1"})  # the caller's principal is cached from here on
    with CaptureQueriesContext(connection) as queries:
        response = client.get(PREVIEWS, {"ids": ids})
    assert response.status_code == 200
    assert len(response.json()["results"]) == len(people)
    statements = [
        q["sql"].split('"')[1]
        if q["sql"].startswith("INSERT")
        else q["sql"].split(" FROM ")[-1][:30]
        for q in queries.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
        # The principal cache's version check (at most once a second, on the shared store).
        and "s2s_cache" not in q["sql"]
    ]
    # ONE query for 100 ids and the audit record's one INSERT (written after the view: a
    # read-only request holds no transaction); the principal comes from the cache.
    assert len(statements) == 2, statements
    assert "people_profile" in statements[0]
    assert statements[1] == "s2s_auth_auditrecord"


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ("1,x", "Every id must be an integer."),
        ("1.5", "Every id must be an integer."),
        ("", "This field may not be blank."),
        (",,", "Give at least one id, e.g. ids=1,2,3."),
        ("0,-3", "Ids are positive integers."),
        (",".join(str(i) for i in range(1, MAX_PREVIEW_IDS + 2)), "At most 100 ids per request."),
    ],
)
def test_bad_ids_are_400_with_a_field_message(client, db, ids, message):
    response = client.get(PREVIEWS, {"ids": ids})
    assert response.status_code == 400
    assert response.json() == {"ids": [message]}


def test_missing_ids_is_400(client, db):
    response = client.get(PREVIEWS)
    assert response.status_code == 400
    assert response.json() == {"ids": ["This field is required."]}


def test_duplicate_ids_count_once(client, people):
    response = client.get(PREVIEWS, {"ids": "1,1,1,2"})
    assert [r["id"] for r in response.json()["results"]] == [1, 2]


def test_seed_is_idempotent_and_creates_admin(db):
    call_command("seed_demo", verbosity=0)
    call_command("seed_demo", verbosity=0)
    assert Profile.objects.count() == 50
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.has_usable_password()
    # The sequence was reset: a new user does not collide with the explicit ids.
    assert get_user_model().objects.create(username="newcomer").pk > 50


def test_people_api_requires_sign_in(client, people):
    del client.defaults["SSL_CLIENT_CERT"]
    assert client.get("/api/v1/users/").status_code == 403
    user = get_user_model().objects.get(username="seller01")
    client.force_login(user)
    response = client.get("/api/v1/users/", {"city": people[0].city})
    assert response.status_code == 200
    assert {p["city"] for p in response.json()["results"]} == {people[0].city}


def test_ping_is_open_and_service_ping_needs_the_scope(client, ca):
    assert client.get("/api/v1/ping").json() == {"ok": True, "service": "users"}
    assert client.get("/api/v1/service-ping").status_code == 200  # ads has users:read
    del client.defaults["SSL_CLIENT_CERT"]
    assert client.get("/api/v1/ping").status_code == 200
    assert client.get("/api/v1/service-ping").status_code == 401
