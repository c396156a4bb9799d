"""Rate limits of the identity service: DRF throttles on the shared replay store.

The throttles themselves are :mod:`s2s_auth.credentials.throttles` (DRF's sliding
window on ``S2S_AUTH["REPLAY_CACHE"]``, shared by every worker process). Here:

* :class:`TokenRateThrottle` — token requests of an *authenticated* client: counted
  after its credential was checked, so nobody else's requests use up its budget. A
  :class:`~s2s_auth.credentials.throttles.WindowRateThrottle`: its history stays small
  however high the limit.
* :class:`TokenFailures` / :class:`AddressTokenFailures` — failed client
  authentications per (client id, source address) and per source address. Beyond
  them, that source's secret and assertion attempts get 429 before any check; a
  connection with a verified TLS client certificate is never held back by them.
* :class:`RegistrationRateThrottle` — registrations per address per hour.
* :class:`RenewalRateThrottle` — certificate renewals per caller (its verified
  SPIFFE ID), counted after the certificate was checked.
* Logins: :func:`~s2s_auth.credentials.throttles.login_gate`.
"""

from __future__ import annotations

import math

from rest_framework.throttling import SimpleRateThrottle

from s2s_auth.credentials.throttles import (
    FailureCounter,
    LoginFailures,
    SharedRateThrottle,
    WindowRateThrottle,
    login_gate,
)

# The former name of the base class, kept for subclasses elsewhere.
IssuerRateThrottle = SharedRateThrottle

__all__ = [
    "AddressTokenFailures",
    "IssuerRateThrottle",
    "LoginFailures",
    "RegistrationRateThrottle",
    "RenewalRateThrottle",
    "TokenFailures",
    "TokenRateThrottle",
    "login_gate",
    "retry_after",
]


class TokenRateThrottle(WindowRateThrottle):
    """Token requests per authenticated client id."""

    scope = "token"
    setting = "TOKEN_RATE_LIMIT_PER_MINUTE"


class TokenFailures(FailureCounter):
    """Failed client authentications per (client id, address): ``TokenFailures.of(...)``."""

    scope = "token-failures"
    setting = "TOKEN_FAILURE_LIMIT_PER_MINUTE"

    @classmethod
    def of(cls, client_id: str, address: str) -> TokenFailures:
        return cls(f"{client_id}\0{address}")


class AddressTokenFailures(FailureCounter):
    """Failed client authentications per source address, whatever the client id."""

    scope = "token-failures-address"
    setting = "TOKEN_ADDRESS_FAILURE_LIMIT_PER_MINUTE"


class RegistrationRateThrottle(SharedRateThrottle):
    """Service registrations per client IP (a view's ``throttle_classes``)."""

    scope = "register"
    setting = "REGISTRATION_RATE_LIMIT_PER_HOUR"
    period = "hour"


def retry_after(throttle: SimpleRateThrottle) -> int:
    """Whole seconds for ``Retry-After`` after ``throttle`` refused (at least 1)."""
    wait = throttle.wait()
    return max(1, math.ceil(throttle.duration if wait is None else wait))


class RenewalRateThrottle(SharedRateThrottle):
    """Certificate renewals per verified SPIFFE ID: ``RenewalRateThrottle(spiffe_id)``."""

    scope = "renew"
    setting = "RENEWAL_RATE_LIMIT_PER_MINUTE"
