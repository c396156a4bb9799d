import os

from s2s_auth.client import ServiceClient


def users_client(base_url, ca_bundle):
    client = ServiceClient(base_url, ca_bundle=ca_bundle)
    # From a secret store, never from code. ServiceClient sends it to base_url only.
    client.headers["Authorization"] = f"ApiKey {os.environ['USERS_API_KEY']}"
    return client
