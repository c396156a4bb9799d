"""Admin pages of the identity service: client secrets (hash prefix only) and the
signing-key register. Neither shows secret material; both are read-only."""

from django.contrib import admin

from s2s_auth.audit.changes import audited_log_methods, record_admin_action
from s2s_auth.issuer.keys import sync_registry
from s2s_auth.issuer.models import ClientSecret, SigningKey


@admin.register(ClientSecret)
class ClientSecretAdmin(admin.ModelAdmin):
    """Secrets are created with ``s2s_service add|rotate-secret`` (shown once there).

    Deleting a row revokes that secret.
    """

    list_display = ("principal", "hash_prefix", "algorithm", "created_at", "expires_at", "active")
    list_filter = ("algorithm",)
    list_select_related = ("principal",)
    search_fields = ("principal__name",)
    fields = ("principal", "hash_prefix", "algorithm", "created_at", "expires_at")
    readonly_fields = ("principal", "hash_prefix", "algorithm", "created_at")
    actions = ["expire_now"]
    # Every change and delete (a revocation) made here is an audit record too.
    log_addition, log_change, log_deletions = audited_log_methods(admin.ModelAdmin)

    @admin.display(boolean=True)
    def active(self, obj):
        return obj.is_active()

    @admin.display(description="hash prefix")
    def hash_prefix(self, obj):
        return obj.hash_prefix

    def has_add_permission(self, request):
        return False

    @admin.action(description="Expire the selected secrets now")
    def expire_now(self, request, queryset):
        from django.utils import timezone

        from s2s_auth.credentials.cache import invalidate

        queryset.update(expires_at=timezone.now())
        invalidate()  # an UPDATE sends no signal: refused by every process now
        record_admin_action(request, queryset, "secret_expired")


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    """Mirrors the key files (refreshed when the list is shown); rotate with s2s_keys."""

    list_display = ("kid", "status", "created_at", "retired_at", "published_until", "pruned_at")
    fields = ("kid", "created_at", "retired_at", "published_until", "pruned_at", "public_jwk")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        sync_registry()
        return super().changelist_view(request, extra_context)
