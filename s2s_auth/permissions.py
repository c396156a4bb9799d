"""Scope permissions. Default: no scope, no access.

    permission_classes = [HasScope("users:read")]
or
    permission_classes = [HasRequiredScopes]
    required_scopes = ["users:read"]
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

__all__ = ["HasRequiredScopes", "HasScope", "IsService"]


class IsService(BasePermission):
    """An authenticated service principal (not an end user, not anonymous)."""

    message = {"error": "not_a_service", "detail": "Only authenticated services may call this."}

    def has_permission(self, request, view) -> bool:
        return bool(getattr(request.user, "is_service", False))


class _ScopePermission(IsService):
    def scopes_for(self, view) -> list[str]:
        raise NotImplementedError

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        wanted = self.scopes_for(view)
        user = request.user
        if wanted and all(map(user.has_scope, wanted)):  # (every allowed request)
            return True
        missing = [scope for scope in wanted if not user.has_scope(scope)]
        if not wanted or missing:
            self.message = {
                "error": "insufficient_scope",
                "detail": f"{request.user.name} lacks scope(s): {' '.join(missing or ['(none)'])}"
                if wanted
                else "This view declares no required scope, so no service may call it.",
            }
            return False
        return True


def HasScope(*scopes: str) -> type[BasePermission]:
    """A permission class requiring every one of ``scopes``."""
    if not scopes:
        raise ValueError("HasScope needs at least one scope")

    class HasScopePermission(_ScopePermission):
        def scopes_for(self, view) -> list[str]:
            return list(scopes)

    HasScopePermission.__name__ = HasScopePermission.__qualname__ = f"HasScope({', '.join(scopes)})"
    return HasScopePermission


class HasRequiredScopes(_ScopePermission):
    """Requires every scope in the view's ``required_scopes``; none declared denies."""

    def scopes_for(self, view) -> list[str]:
        return list(getattr(view, "required_scopes", None) or [])
