"""The object DRF sees as ``request.user`` for an authenticated service.

Stateless (like simplejwt's TokenUser): built from the principal row at
authentication time and never saved. ``end_user`` carries the user context a
caller forwarded, when it did.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EndUser:
    id: str
    username: str = ""
    scopes: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class ServiceIdentity:
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
