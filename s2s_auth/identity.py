"""Who a caller is: SPIFFE IDs built, parsed and validated here, once; and the objects
DRF sees as ``request.user``.

A service's SPIFFE ID is ``spiffe://<trust-domain><path>``, the path given by a
template of ``S2S_AUTH["SPIFFE_ID_PATHS"]`` (default ``/service/{name}``; Istio's
``/ns/default/sa/{name}`` or a SPIRE layout beside it). Every place that builds one
calls :func:`spiffe_id` (the first template: IDs are issued in that layout); every
place that reads one calls :func:`parse_spiffe_id` and :func:`service_name`, which
accept any template. The layouts are known to :func:`name_from_path` and
:func:`spiffe_id` only. A template is matched whole (``re.fullmatch``: a trailing
newline is not part of a name); ``{name}`` is one whole path segment; a path that
two templates read as two different names is refused as ambiguous.

This module imports nothing of Django at import time (the templates and the default
trust domain are read from the settings when a function runs), so the request-free
core can use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from s2s_auth.errors import S2SError

__all__ = [
    "DEFAULT_SPIFFE_ID_PATHS",
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
    "spiffe_id_paths",
    "spiffe_ids",
    "validate_path_templates",
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
#: The layout of service IDs when ``SPIFFE_ID_PATHS`` is not set.
DEFAULT_SPIFFE_ID_PATHS = ("/service/{name}",)
_NAME = "{name}"
_SEGMENT_RE = re.compile(r"[A-Za-z0-9._-]+")


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


def validate_path_templates(value: object) -> tuple[str, ...]:
    """The templates of ``value`` (a list, or a comma-separated string), validated.

    Each is ``/segment/...`` with exactly one segment ``{name}`` and the others
    literal SPIFFE path segments (not ``.`` or ``..``). ValueError names the culprit.
    """
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("SPIFFE_ID_PATHS must be a non-empty list of path templates.")
    for template in value:
        if not isinstance(template, str) or not template.startswith("/"):
            raise ValueError(f"SPIFFE ID path template {template!r} must start with '/'.")
        segments = template[1:].split("/")
        literal = [seg for seg in segments if seg != _NAME]
        if len(segments) - len(literal) != 1:
            raise ValueError(
                f"SPIFFE ID path template {template!r} needs exactly one whole segment {_NAME}."
            )
        bad = [seg for seg in literal if not _SEGMENT_RE.fullmatch(seg) or seg in (".", "..")]
        if bad:
            raise ValueError(
                f"SPIFFE ID path template {template!r}: segment {bad[0]!r} is not a literal "
                "of letters, digits, '.', '-' or '_'."
            )
    if len(set(value)) != len(value):
        raise ValueError("SPIFFE_ID_PATHS names a template twice.")
    return tuple(value)


@lru_cache(maxsize=32)
def _pattern(template: str) -> re.Pattern:
    return re.compile(
        "".join(
            "/" + (f"({SERVICE_NAME_RE.pattern})" if seg == _NAME else re.escape(seg))
            for seg in template[1:].split("/")
        )
    )


def spiffe_id_paths() -> tuple[str, ...]:
    """The configured templates (``S2S_AUTH["SPIFFE_ID_PATHS"]``), read now; the
    default outside a configured Django project. A bad value is ImproperlyConfigured
    (``manage.py check`` reports it first: s2s_auth.E030)."""
    global _last_paths
    django = _django()
    last = _last_paths
    if last is None and not django.settings.configured:  # (once configured, always)
        return DEFAULT_SPIFFE_ID_PATHS
    conf = django.s2s_settings()
    if last is not None and last[0] is conf:  # the same settings object: the same answer
        return last[1]
    value = conf.SPIFFE_ID_PATHS
    try:
        paths = _validated(tuple(value) if isinstance(value, list) else value)
    except (TypeError, ValueError) as exc:
        raise django.ImproperlyConfigured(f"S2S_AUTH['SPIFFE_ID_PATHS']: {exc}") from exc
    _last_paths = (conf, paths)
    return paths


#: ``(settings object, templates)`` of the last :func:`spiffe_id_paths` (a change of
#: S2S_AUTH makes a new settings object).
_last_paths: tuple | None = None


@lru_cache(maxsize=1)
def _django():
    """Django's settings and ours, imported on first use (not at import time, see the
    module doc) and then kept: every request's SPIFFE ID is read through them."""
    from types import SimpleNamespace

    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    from s2s_auth.conf import s2s_settings

    return SimpleNamespace(
        settings=settings, ImproperlyConfigured=ImproperlyConfigured, s2s_settings=s2s_settings
    )


@lru_cache(maxsize=8)
def _validated(value) -> tuple[str, ...]:
    return validate_path_templates(value)


def _trust_domain(trust_domain: str | None) -> str:
    if trust_domain is None:
        trust_domain = _django().s2s_settings().TRUST_DOMAIN  # call time: settings may change
    if not isinstance(trust_domain, str) or not TRUST_DOMAIN_RE.fullmatch(trust_domain):
        raise SpiffeIDError(
            f"Invalid trust domain {trust_domain!r}: set S2S_AUTH['TRUST_DOMAIN'] to "
            "lowercase letters, digits, '.', '-' or '_'."
        )
    return trust_domain


def spiffe_id(name: str, trust_domain: str | None = None, *, template: str | None = None) -> str:
    """The SPIFFE ID of service ``name``, in the first configured layout (or
    ``template``); the trust domain defaults to ``TRUST_DOMAIN``."""
    validate_service_name(name)
    domain = _trust_domain(trust_domain)
    if template is None:
        template = spiffe_id_paths()[0]
    else:
        validate_path_templates([template])
    return f"{_SCHEME}{domain}{template.replace(_NAME, name)}"


def spiffe_ids(name: str, trust_domain: str | None = None) -> list[str]:
    """Every SPIFFE ID that names service ``name`` (one per configured template),
    the issued one first: what a token's ``aud`` may say to mean this service."""
    return [spiffe_id(name, trust_domain, template=t) for t in spiffe_id_paths()]


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


def name_from_path(path: str, templates: Iterable[str] | None = None) -> str | None:
    """The service name a SPIFFE ID path stands for, else None (no template matches
    the whole path, or two read different names in it).

    The one place that reads the path layout of service IDs; ``templates`` default
    to ``SPIFFE_ID_PATHS``.
    """
    if not isinstance(path, str):
        return None
    found = set()
    for template in spiffe_id_paths() if templates is None else templates:
        match = _pattern(template).fullmatch(path)
        if match:
            found.add(match.group(1))
    return found.pop() if len(found) == 1 else None


def service_name(value: object, trust_domain: str) -> str | None:
    """The service ``value`` names in ``trust_domain``; None for anything else
    (malformed, another trust domain, a path no template matches).

    Remembered per (ID, trust domain, templates): every authenticated request asks it
    for the same few callers, and the answer depends on nothing else."""
    if not isinstance(value, str) or not isinstance(trust_domain, str):
        return None
    templates = spiffe_id_paths()
    key = (value, trust_domain, templates)
    try:
        return _service_names[key]
    except KeyError:
        pass
    try:
        domain, path = parse_spiffe_id(value)
    except SpiffeIDError:
        name = None
    else:
        name = name_from_path(path, templates) if domain == trust_domain else None
    if len(value) <= MAX_SPIFFE_ID_LENGTH:
        if len(_service_names) >= _SERVICE_NAMES_MAX:
            _service_names.clear()  # bounded: junk IDs cannot grow it
        _service_names[key] = name
    return name


_service_names: dict[tuple, str | None] = {}
_SERVICE_NAMES_MAX = 1024


# ----------------------------------------------------------------- request.user objects


@dataclass(frozen=True)
class EndUser:
    id: str
    username: str = ""
    scopes: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, init=False)
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

    def __init__(
        self,
        name: str,
        spiffe_id: str,
        scopes: frozenset[str],
        mechanism: str,
        principal_id: int | None = None,
        end_user: EndUser | None = None,
    ):
        # The fields above, set in one step: a frozen dataclass's own __init__ makes an
        # object.__setattr__ call per field (one identity per request; a test keeps
        # this signature equal to the fields).
        self.__dict__.update(
            name=name,
            spiffe_id=spiffe_id,
            scopes=scopes,
            mechanism=mechanism,
            principal_id=principal_id,
            end_user=end_user,
        )

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
