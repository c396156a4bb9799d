"""User context by token exchange (RFC 8693) across the two live services.

ads acts for bob at users: it exchanges bob's token at the identity service for one
minted for users alone, naming ads in ``act``, and users records bob as
``on_behalf_of``. A token lifted at one hop is refused at any other: bob's own token
forwarded as it is, an exchanged token presented by another service, and one exchanged
for another audience.
"""

from __future__ import annotations

import pytest
import requests

from s2s_auth.client import ServiceClient
from s2s_auth.client.auth import ServiceCredentials, ServiceJWTAuth, end_user_context
from s2s_auth.client.exchange import TokenExchanger, UserContextUnavailable
from tests.e2e.app import LAMP, give_password, log_in
from tests.e2e.test_deals_live import audit, notifications

pytestmark = pytest.mark.live

ADS = "spiffe://fleamarket.local/service/ads"
USERS = "spiffe://fleamarket.local/service/users"


@pytest.fixture(scope="module")
def deployment(shared_deployment):
    return shared_deployment


@pytest.fixture(scope="module")
def people(deployment):
    return {
        name: log_in(deployment, user, give_password(deployment, user))
        for name, user in (("alice", "seller01"), ("bob", "seller02"))
    }


def as_service(deployment, name: str) -> ServiceClient:
    """A client of users presenting ``name``'s certificate and service JWTs."""
    pki = deployment.pki_dir
    cert = (pki / f"{name}.pem", pki / f"{name}.key")
    credentials = ServiceCredentials.from_files(*cert)
    return ServiceClient(
        deployment.url("users"),
        ca_bundle=pki / "ca.pem",
        cert=cert,
        auth=ServiceJWTAuth(credentials, "users", send_x5c=False),
    )


def exchanger(deployment, name: str) -> TokenExchanger:
    pki = deployment.pki_dir
    return TokenExchanger(
        deployment.url("users") + "/oauth/token",
        client_id=name,
        cert=(pki / f"{name}.pem", pki / f"{name}.key"),
        auth_method="tls_client_auth",
        ca_bundle=pki / "ca.pem",
    )


def notify(client: ServiceClient, recipient: int, user_token: str) -> requests.Response:
    with end_user_context(user_token):
        return client.post(
            f"api/v1/users/{recipient}/notifications",
            json={"kind": "deal_requested", "message": "hello", "ad_id": 1},
        )


def test_ads_calls_users_with_an_exchanged_token(deployment, people):
    alice, bob = people["alice"], people["bob"]
    response = alice.ads("POST", "/api/v1/ads/", json={**LAMP, "title": "Exchanged lamp"})
    assert response.status_code == 201, response.text
    ad = response.json()
    response = bob.ads("POST", f"/api/v1/ads/{ad['id']}/deals/", json={"message": "Now?"})
    assert response.status_code == 201, response.text

    notice = notifications(deployment)[-1]
    assert (notice["user_id"], notice["sender"], notice["on_behalf_of"]) == (
        alice.id,
        ADS,
        str(bob.id),
    )
    # The identity service issued ads a token for users carrying bob, ads in act.
    issued = [
        r
        for r in audit(deployment, "users", "/oauth/token")
        if r["reason"] == "user_token_issued" and r["end_user"] == str(bob.id)
    ]
    assert issued and issued[-1]["mechanism"] == "tls_client_auth", issued
    at_users = audit(deployment, "users", f"/api/v1/users/{alice.id}/notifications")
    assert any(
        r["principal"] == ADS and r["end_user"] == str(bob.id) and r["outcome"] == "accepted"
        for r in at_users
    ), at_users


def test_a_token_lifted_at_one_hop_is_refused_at_any_other(deployment, people):
    alice, bob = people["alice"], people["bob"]
    ads = as_service(deployment, "ads")
    worker = as_service(deployment, "worker")

    # ads' own exchange: accepted (the honest call).
    for_users = exchanger(deployment, "ads").token_for(bob.token, "users")
    assert notify(ads, alice.id, for_users).status_code == 201

    # bob's own token, forwarded as it is by ads: refused (users did not opt in).
    response = notify(ads, alice.id, bob.token)
    assert (response.status_code, response.json()["error"]) == (403, "end_user_not_exchanged")
    # ads' exchanged token, lifted by the worker and presented with its own credentials.
    response = notify(worker, alice.id, for_users)
    assert (response.status_code, response.json()["error"]) == (403, "end_user_actor_mismatch")
    # Nor can a service get a token for a service it is granted nothing of.
    with pytest.raises(UserContextUnavailable) as refused:
        exchanger(deployment, "worker").token_for(bob.token, "ads")
    assert refused.value.error == "invalid_target"
