"""RFC 9421 HTTP Message Signatures with RFC 9530 ``Content-Digest`` (the core, no DRF).

Canonicalisation, the signature base and the cryptographic check are the
``http-message-signatures`` library's; this module adds the policy the library leaves to
its caller: which components must be covered, ``created``/``expires`` with an injectable
clock, nonces and replay, the content digest checked against the actual body, the
algorithm derived from the key type, and one reason code per failure
(:class:`SignatureError`).

Client side (the ``requests`` hook is :class:`s2s_auth.client.auth.HTTPSignatureAuth`)::

    sign_request(prepared, key_id="...", private_key=private_key)

Server side (the DRF layer does this)::

    verifier = SignatureVerifier(resolve_key=..., nonce_store=cache_backed_add)
    verified = verifier.verify(
        request.method,
        [target_uri(scheme, host, raw_path, request.META["QUERY_STRING"])
         for scheme, host in map(parse_origin, OWN_ORIGINS)],
        request.headers,
        request.body,
    )

``@target-uri`` on the server: the client signs the URL it sends to; the server must
rebuild the *same* string (:func:`target_uri`). Behind a TLS-terminating proxy the scheme
and host seen by Django are the proxy's, and ``X-Forwarded-*``/``Host`` are whatever the
caller put there: take scheme and host from trusted configuration (the service's own
origins, port included), never from request headers that the caller controls: else a
request signed for one service is accepted by another that shares a host name. Take the
path as the client sent it (``environ["RAW_URI"]`` under gunicorn,
``environ["REQUEST_URI"]`` under uWSGI), falling back to Django's decoded
``request.path``, which :func:`target_uri` re-encodes (an encoded ``/`` (``%2F``) in the
original path cannot be recovered from it).
"""

from __future__ import annotations

from s2s_auth.core.httpsig.algorithms import (
    DEFAULT_ALGORITHMS,
    DEFAULT_COMPONENTS,
    SUPPORTED_ALGORITHMS,
    algorithm_for_key,
)
from s2s_auth.core.httpsig.digest import check_content_digest, content_digest
from s2s_auth.core.httpsig.errors import REASON_CODES, SignatureError
from s2s_auth.core.httpsig.nonces import MemoryNonceStore
from s2s_auth.core.httpsig.signing import sign_request
from s2s_auth.core.httpsig.target import parse_origin, target_uri
from s2s_auth.core.httpsig.verifier import SignatureVerifier, VerifiedSignature

__all__ = [
    "DEFAULT_ALGORITHMS",
    "DEFAULT_COMPONENTS",
    "REASON_CODES",
    "SUPPORTED_ALGORITHMS",
    "MemoryNonceStore",
    "SignatureError",
    "SignatureVerifier",
    "VerifiedSignature",
    "algorithm_for_key",
    "check_content_digest",
    "content_digest",
    "parse_origin",
    "sign_request",
    "target_uri",
]
