from s2s_auth.client import ServiceClient, mtls_client
from s2s_auth.client.auth import ServiceCredentials, ServiceJWTAuth


def users_client(base_url, ca_bundle):
    """A fresh JWT per request; its x5c header carries our chain, so no mTLS is needed."""
    credentials = ServiceCredentials.from_pki()  # <PKI_DIR>/<SERVICE_NAME>.pem and .key
    return ServiceClient(
        base_url, ca_bundle=ca_bundle, auth=ServiceJWTAuth(credentials, audience="users")
    )


def users_client_over_mtls(base_url):
    """Over mTLS the connection's certificate verifies the token: leave x5c out."""
    credentials = ServiceCredentials.from_pki()
    return mtls_client(base_url, auth=ServiceJWTAuth(credentials, "users", send_x5c=False))
