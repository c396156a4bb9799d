from django.conf import settings

from s2s_auth.client import mtls_client, per_thread_client

# One long-lived client per thread. It presents <PKI_DIR>/<SERVICE_NAME>.pem (and .key)
# and accepts only a server whose certificate chains to <PKI_DIR>/ca.pem.
users_client = per_thread_client(lambda: mtls_client(settings.USERS_SERVICE_URL))


def seller_previews(ids):
    response = users_client().get("api/v1/users/previews", params={"ids": ",".join(map(str, ids))})
    response.raise_for_status()  # 401/403 carry {"error": ..., "detail": ...}
    return response.json()["previews"]
