from django.conf import settings

from s2s_auth.client import ServiceClient, mtls_client, per_thread_client
from s2s_auth.client.auth import ServiceCredentials, ServiceJWTAuth

# One long-lived client per thread. It presents <PKI_DIR>/<SERVICE_NAME>.pem (and .key)
# and accepts only a server whose certificate chains to <PKI_DIR>/ca.pem.
users_client = per_thread_client(lambda: mtls_client(settings.USERS_SERVICE_URL))


def users_jwt_client():
    """No client certificate on the connection: a fresh service JWT per request, signed
    with ads.key, its x5c header carrying ads.pem."""
    return ServiceClient(
        settings.USERS_SERVICE_URL,
        ca_bundle=settings.BASE_DIR / "var/pki/ca.pem",
        auth=ServiceJWTAuth(ServiceCredentials.from_pki(), audience="users"),
    )


def seller_previews(ids, client=None):
    client = client or users_client()
    response = client.get("api/v1/users/previews", params={"ids": ",".join(map(str, ids))})
    response.raise_for_status()  # 401/403 carry {"error": ..., "detail": ...}
    return response.json()["previews"]
