"""Who a caller is: SPIFFE IDs built, parsed and validated here, once; and the objects
DRF sees as ``request.user``.

A service's SPIFFE ID is ``spiffe://<trust-domain>/service/<name>``. Every place that
builds one calls :func:`spiffe_id`; every place that reads one calls
:func:`parse_spiffe_id` and :func:`service_name`. The ``/service/<name>`` layout is
known to :func:`name_from_path` and :func:`spiffe_id` only, so that other layouts can
be plugged in there. Patterns are matched with ``re.fullmatch``: a trailing newline
is not part of a name.

This module imports nothing of Django at import time (only :func:`spiffe_id` reads the
default trust domain from the settings), so the request-free core can use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from s2s_auth.errors import S2SError

__all__ = [
    "MAX_SPIFFE_ID_LENGTH",
    "SERVICE_NAME_RE",
    "TRUST_DOMAIN_RE",
    "EndUser",
    "ServiceIdentity",
    "SpiffeIDError",
    "is_spiffe_id",
    "name_from_path",
    "parse_spiffe_id",
    "service_name",
    "spiffe_id",
    "validate_service_name",
]

#: A service name: a DNS label (lowercase letters, digits, inner hyphens), 1-63 chars.
SERVICE_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
#: A trust domain as the SPIFFE spec allows it: lowercase letters, digits, ``.-_``.
TRUST_DOMAIN_RE = re.compile(r"[a-z0-9._-]+")
#: Longest SPIFFE ID accepted (the SPIFFE spec's URI limit).
MAX_SPIFFE_ID_LENGTH = 2048

_SCHEME = "spiffe://"
# Path segments: non-empty, the SPIFFE character set; no query, fragment or port.
_SPIFFE_ID_RE = re.compile(r"spiffe://([a-z0-9._-]+)((?:/[A-Za-z0-9._-]+)*)")
_SERVICE_PATH_RE = re.compile(rf"/service/({SERVICE_NAME_RE.pattern})")


class SpiffeIDError(S2SError, ValueError):
    """A malformed SPIFFE ID or service name (code ``bad_spiffe_id``)."""

    def __init__(self, detail: str):
        super().__init__("bad_spiffe_id", detail)


def validate_service_name(name: object) -> str:
    """``name`` if it is a valid service name, else :class:`SpiffeIDError`."""
    if not isinstance(name, str) or not SERVICE_NAME_RE.fullmatch(name):
        raise SpiffeIDError(
            f"Invalid service name {name!r}: use 1-63 lowercase letters, digits and "
            "hyphens (not at the start or end)."
        )
    return name


def spiffe_id(name: str, trust_domain: str | None = None) -> str:
    """The SPIFFE ID of service ``name``; the trust domain defaults to ``TRUST_DOMAIN``."""
    validate_service_name(name)
    if trust_domain is None:
        from s2s_auth.conf import s2s_settings  # call time: settings may change

        trust_domain = s2s_settings().TRUST_DOMAIN
    if not isinstance(trust_domain, str) or not TRUST_DOMAIN_RE.fullmatch(trust_domain):
        raise SpiffeIDError(
            f"Invalid trust domain {trust_domain!r}: set S2S_AUTH['TRUST_DOMAIN'] to "
            "lowercase letters, digits, '.', '-' or '_'."
        )
    return f"{_SCHEME}{trust_domain}/service/{name}"


def is_spiffe_id(value: object) -> bool:
    """Whether ``value`` claims to be a SPIFFE ID (its scheme; case-insensitive).

    For telling services from end users, and for picking SPIFFE URIs among a
    certificate's SANs. Says nothing of validity: that is :func:`parse_spiffe_id`.
    """
    return isinstance(value, str) and value[: len(_SCHEME)].lower() == _SCHEME


def parse_spiffe_id(value: object) -> tuple[str, str]:
    """``(trust_domain, path)`` of a well-formed SPIFFE ID, else :class:`SpiffeIDError`.

    The path is ``""`` or ``/segment[/segment...]`` (no empty, ``.`` or ``..`` segment).
    """
    if not isinstance(value, str) or len(value) > MAX_SPIFFE_ID_LENGTH:
        raise SpiffeIDError("A SPIFFE ID is a string of at most 2048 characters.")
    match = _SPIFFE_ID_RE.fullmatch(value)
    if match is None or {".", ".."} & set(match.group(2).split("/")):
        raise SpiffeIDError(f"Malformed SPIFFE ID {value[:100]!r}.")
    return match.group(1), match.group(2)


def name_from_path(path: str) -> str | None:
    """The service name a SPIFFE ID path stands for (``/service/<name>``), else None.

    The one place that knows the path layout of service IDs.
    """
    match = _SERVICE_PATH_RE.fullmatch(path)
    return match.group(1) if match else None


def service_name(value: object, trust_domain: str) -> str | None:
    """The service ``value`` names in ``trust_domain``; None for anything else
    (malformed, another trust domain, another path layout)."""
    try:
        domain, path = parse_spiffe_id(value)
    except SpiffeIDError:
        return None
    return name_from_path(path) if domain == trust_domain else None


# ----------------------------------------------------------------- request.user objects


@dataclass(frozen=True)
class EndUser:
    id: str
    username: str = ""
    scopes: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class ServiceIdentity:
    """The object DRF sees as ``request.user`` for an authenticated service.

    Stateless (like simplejwt's TokenUser): built from the principal row at
    authentication time and never saved. ``end_user`` carries the user context a
    caller forwarded, when it did.
    """

    name: str
    spiffe_id: str
    scopes: frozenset[str]
    mechanism: str
    principal_id: int | None = None
    end_user: EndUser | None = None

    is_service = True
    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __str__(self) -> str:
        return self.spiffe_id

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    # Django's auth API, so templates and the browsable API don't trip over it.
    def get_username(self) -> str:
        return self.name

    def has_perm(self, perm, obj=None) -> bool:
        return False

    def has_perms(self, perms, obj=None) -> bool:
        return False

    def has_module_perms(self, app_label) -> bool:
        return False
