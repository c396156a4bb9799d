"""DRF authentication classes, one small module per mechanism; shared parts in ``base``.

``S2S_AUTH["MECHANISMS"]`` names them by the short names of :data:`MECHANISM_CLASSES`
or by the dotted path of any DRF ``BaseAuthentication`` subclass (a third-party
mechanism); :func:`mechanism_classes` resolves the names. Nothing is imported here
until a name is resolved, so ``import s2s_auth.mechanisms`` is cheap.
"""

from __future__ import annotations

from functools import lru_cache

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

__all__ = ["MECHANISM_CLASSES", "mechanism_class", "mechanism_classes"]

#: The built-in mechanisms by short name.
MECHANISM_CLASSES = {
    "mtls": "s2s_auth.mechanisms.mtls.MTLSAuthentication",
    "service_jwt": "s2s_auth.mechanisms.service_jwt.ServiceJWTAuthentication",
    "jwt_svid": "s2s_auth.mechanisms.jwt_svid.JWTSVIDAuthentication",
    "http_signature": "s2s_auth.mechanisms.http_signature.HTTPSignatureAuthentication",
    "access_token": "s2s_auth.mechanisms.access_token.AccessTokenAuthentication",
    "api_key": "s2s_auth.mechanisms.api_key.APIKeyAuthentication",
}


def mechanism_class(name: str, *, setting: str = "S2S_AUTH['MECHANISMS']") -> type:
    """The authentication class for a short name or a dotted path.

    Raises ImproperlyConfigured naming ``setting`` for an unknown name, a path that
    does not import, or a class that is not a DRF ``BaseAuthentication``.
    """
    from rest_framework.authentication import BaseAuthentication

    if not isinstance(name, str) or not name:
        raise ImproperlyConfigured(f"{setting}: {name!r} is not a mechanism name or path.")
    if "." not in name and name not in MECHANISM_CLASSES:
        raise ImproperlyConfigured(
            f"Unknown s2s mechanism {name!r} in {setting}; known: "
            f"{', '.join(MECHANISM_CLASSES)}, or the dotted path of a DRF "
            "BaseAuthentication subclass."
        )
    path = MECHANISM_CLASSES.get(name, name)
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"{setting}: cannot import {path!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, BaseAuthentication)):
        raise ImproperlyConfigured(
            f"{setting}: {path!r} is not a subclass of "
            "rest_framework.authentication.BaseAuthentication."
        )
    return cls


def mechanism_classes(names, *, setting: str = "S2S_AUTH['MECHANISMS']") -> list[type]:
    """The authentication classes for ``names``, in order.

    Resolved once per list of names (views read the setting on every request); a
    name that does not resolve raises every time, it is never remembered."""
    if isinstance(names, str):
        raise ImproperlyConfigured(f"{setting} must be a list of names, not a string.")
    try:
        return list(_resolved(tuple(names), setting))
    except TypeError:  # not hashable: resolved, not remembered
        return [mechanism_class(name, setting=setting) for name in names]


@lru_cache(maxsize=64)
def _resolved(names: tuple, setting: str) -> tuple[type, ...]:
    return tuple(mechanism_class(name, setting=setting) for name in names)
