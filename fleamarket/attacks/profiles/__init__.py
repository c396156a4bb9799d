"""The mechanism profiles, one module each; :data:`MECHANISMS` maps a catalogue
profile id to the class that runs its attacks (see :mod:`.base` for what one provides)."""

from __future__ import annotations

from .access_token import AccessToken
from .api_key import APIKey
from .base import Mechanism, NotApplicable
from .bound_token import BoundToken
from .default import Default
from .http_signature import HTTPSignature
from .mtls import MTLS
from .network import Network
from .service_jwt import ServiceJWT

MECHANISMS: dict[str, type[Mechanism]] = {
    cls.id: cls
    for cls in (Network, APIKey, MTLS, ServiceJWT, AccessToken, BoundToken, HTTPSignature, Default)
}

__all__ = ["MECHANISMS", "Mechanism", "NotApplicable"]
