from s2s_auth.client import ServiceClient
from s2s_auth.client.auth import ServiceCredentials, ServiceJWTAuth
from s2s_auth.client.exchange import TokenExchanger
from s2s_auth.conf import s2s_settings


def users_client_with_user_context(base_url, ca_bundle):
    """Calls made inside end_user_context carry a token exchanged for users alone."""
    conf = s2s_settings()
    name = conf.SERVICE_NAME
    cert = (conf.pki_dir / f"{name}.pem", conf.pki_dir / f"{name}.key")
    exchanger = TokenExchanger(  # one per process: it caches the exchanged tokens
        f"{base_url}/oauth/token",
        client_id=name,
        cert=cert,
        auth_method="tls_client_auth",
        ca_bundle=ca_bundle,
    )
    return ServiceClient(
        base_url,
        ca_bundle=ca_bundle,
        cert=cert,
        auth=ServiceJWTAuth(ServiceCredentials.from_pki(), "users", send_x5c=False),
        user_context=exchanger,
        audience="users",
    )
