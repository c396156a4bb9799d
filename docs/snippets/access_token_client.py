from pathlib import Path

from s2s_auth.client import ServiceClient
from s2s_auth.client.token_manager import BearerTokenAuth, TokenManager


def secret_client(issuer, base_url, client_secret, ca_bundle):
    """client_secret_basic: a plain bearer token, usable by whoever holds it."""
    tokens = TokenManager(
        f"{issuer}/oauth/token",
        client_id="ads",
        client_secret=client_secret,
        scope="users:read",
        ca_bundle=ca_bundle,
    )
    return ServiceClient(base_url, ca_bundle=ca_bundle, auth=BearerTokenAuth(tokens))


def bound_client(issuer, base_url, pki_dir):
    """tls_client_auth: the token is bound to our certificate (cnf.x5t#S256)."""
    pki = Path(pki_dir)
    cert = (pki / "ads.pem", pki / "ads.key")
    tokens = TokenManager(
        f"{issuer}/oauth/token",
        client_id="ads",
        cert=cert,
        auth_method="tls_client_auth",
        scope="users:read",
        ca_bundle=pki / "ca.pem",
    )
    return ServiceClient(
        base_url, ca_bundle=pki / "ca.pem", cert=cert, auth=BearerTokenAuth(tokens)
    )


def assertion_client(issuer, base_url, pki_dir):
    """private_key_jwt: no shared secret; a JWT signed with our key authenticates us."""
    pki = Path(pki_dir)
    tokens = TokenManager(
        f"{issuer}/oauth/token",
        client_id="ads",
        cert=(pki / "ads.pem", pki / "ads.key"),
        auth_method="private_key_jwt",
        scope="users:read",
        ca_bundle=pki / "ca.pem",
    )
    return ServiceClient(base_url, ca_bundle=pki / "ca.pem", auth=BearerTokenAuth(tokens))
