"""DRF authentication classes: thin adapters from a request to the core verifiers.

Each class returns ``None`` when the request does not use its scheme,
``(ServiceIdentity, credential)`` on success, and raises ``CredentialMissing``
(401) or ``CredentialRejected`` (403) with a reason code otherwise. The classes live
in ``s2s_auth.mechanisms``, one module each.
"""

from .mechanisms.base import ServiceAuthentication, identity_for
from .mechanisms.mtls import MTLSAuthentication, verify_peer

__all__ = ["MTLSAuthentication", "ServiceAuthentication", "identity_for", "verify_peer"]
