"""s2s_auth: service-to-service authentication for Django REST framework services.

Mechanisms: mutual TLS, self-signed service JWTs, OAuth2 client-credentials access
tokens, RFC 9421 HTTP message signatures and API keys, with a hash-chained audit log.
Settings live in the ``S2S_AUTH`` dict (see ``s2s_auth.conf.DEFAULTS``).
"""

__version__ = "0.1.0"
