"""The request-free core: no DRF, no ``django.http``, no ORM (tests/s2s_auth/core/test_layering.py).

==================  ===============================================================
``x509``            certificate helpers, once: fingerprint, x5t#S256, x5c, chains
``certs``           PeerVerifier: path, validity, EKU, CRL, SPIFFE ID of a peer chain
``ca``              the file-based private CA (``s2s_pki``); ``issuance`` builds what
                    it signs, ``files`` writes keys and certificates atomically
``jose``            compact JWS/JWT: strict parsing, verify, sign
``jwk``             JWKs, JWK Sets and the algorithm policy
``jose_encoding``   TokenError, strict base64url and JSON (shared by jose and jwk)
``jwks``            the issuer's JWK Set, fetched and cached
``httpsig``         RFC 9421 signatures: digest, target URI, signing, verifier, nonces
``wire``            header and claim names shared by client and server
==================  ===============================================================

SPIFFE IDs are built and parsed in :mod:`s2s_auth.identity`; errors subclass
:class:`s2s_auth.errors.S2SError`.
"""
