from s2s_auth.client import mtls_client
from s2s_auth.client.auth import ServiceCredentials, signature_auth


def signing_client(base_url):
    """Signs @method, @target-uri and content-digest of every request (RFC 9421).

    Over mTLS the connection's certificate is the key (keyid = its fingerprint).
    """
    return mtls_client(base_url, auth=signature_auth(ServiceCredentials.from_pki()))
