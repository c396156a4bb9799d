"""Everything a calling service imports: the session, its credentials, auth hooks, tokens."""

from s2s_auth.client.session import ServiceClient, mtls_client, per_thread_client

__all__ = ["ServiceClient", "mtls_client", "per_thread_client"]
