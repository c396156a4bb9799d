"""Operators' changes to principals, scopes, keys and secrets, as audit records.

Who may call whom is decided by these rows (a scope granted, a principal enabled, a key
revoked), so a change to them is evidence too: one record per changed object, with
who made it (the admin user, or the OS user of a management command), what changed,
and the object's security-relevant state afterwards — never a secret or its hash.
Called from the admin (:func:`audited_log_methods`, :func:`record_admin_action`) and
from :mod:`s2s_auth.credentials.principals` (:func:`record_change`).
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable
from typing import Any

from s2s_auth.audit.events import record_event

__all__ = ["audited_log_methods", "record_admin_action", "record_change"]

#: Per model, the fields an audit record shows (others may hold secret material).
STATE_FIELDS = {
    "serviceprincipal": ("name", "spiffe_id", "enabled", "scopes"),
    "servicecertificate": ("fingerprint", "serial", "not_after"),
    "apikey": ("key_id", "expires_at", "revoked_at"),
    "clientsecret": ("algorithm", "created_at", "expires_at"),
}


def _actor(request) -> tuple[str, str]:
    """(channel, who): ``admin`` and the admin user, else ``cli`` and the OS user."""
    user = getattr(request, "user", None)
    if request is not None and user is not None:
        return "admin", user.get_username()
    try:
        return "cli", getpass.getuser()
    except (OSError, KeyError):  # no user name in this environment
        return "cli", ""


def _principal_of(obj) -> str:
    spiffe = getattr(obj, "spiffe_id", None)
    if spiffe is None:
        spiffe = getattr(getattr(obj, "principal", None), "spiffe_id", "")
    return spiffe or ""


def _state(obj) -> dict[str, Any]:
    model = obj._meta.model_name
    fields = STATE_FIELDS.get(model, ())
    return {
        "model": model,
        "pk": obj.pk,
        **{name: getattr(obj, name, None) for name in fields},
    }


def record_change(
    action: str, objects: Iterable, *, request=None, detail: str = "", **changes: Any
) -> None:
    """One record per object of ``objects`` (models of s2s_auth or its issuer):
    ``action`` is the reason code (``scopes_changed``, ``principal_disabled``, ...),
    ``changes`` what was asked (scopes granted, a grace period)."""
    mechanism, actor = _actor(request)
    for obj in objects:
        record_event(
            action,
            mechanism=mechanism,
            actor=actor,
            principal=_principal_of(obj),
            detail=detail or f"{action}: {obj}",
            claims={"object": _state(obj), **({"changes": changes} if changes else {})},
            request=request,
        )


def record_admin_action(request, queryset, action: str) -> None:
    """After an admin bulk action (``queryset.update``, which logs nothing): one record
    per selected object, with its state after the action."""
    record_change(action, list(queryset), request=request)


def audited_log_methods(base):
    """``log_addition``, ``log_change`` and ``log_deletions`` for a ModelAdmin subclass
    of ``base``: Django's admin log entry, plus an audit record of the change."""

    def log_addition(self, request, obj, message):
        entry = base.log_addition(self, request, obj, message)
        record_change(f"{obj._meta.model_name}_added", [obj], request=request)
        return entry

    def log_change(self, request, obj, message):
        entry = base.log_change(self, request, obj, message)
        record_change(
            f"{obj._meta.model_name}_changed", [obj], request=request, admin_message=message
        )
        return entry

    def log_deletions(self, request, queryset):
        objects = list(queryset)  # called before the deletion
        entries = base.log_deletions(self, request, queryset)
        for obj in objects:
            record_change(f"{obj._meta.model_name}_deleted", [obj], request=request)
        return entries

    return log_addition, log_change, log_deletions
