from django.contrib import admin
from django.utils import timezone

from s2s_auth.admin import apikeys, audit  # noqa: F401 - they register their admins
from s2s_auth.audit.changes import audited_log_methods, record_admin_action
from s2s_auth.credentials.cache import invalidate
from s2s_auth.models import ServiceCertificate, ServicePrincipal


class ServiceCertificateInline(admin.TabularInline):
    model = ServiceCertificate
    extra = 0
    fields = ("fingerprint", "serial", "not_after", "created_at")
    readonly_fields = fields
    can_delete = True
    show_change_link = False


@admin.register(ServicePrincipal)
class ServicePrincipalAdmin(admin.ModelAdmin):
    """A self-registered principal shows as such; its scopes stay read-only here until
    it is approved (the "approve" action), so the admin cannot hand a squatter scopes."""

    list_display = ("name", "spiffe_id", "enabled", "origin", "scopes", "updated_at")
    list_filter = ("enabled", "self_registered")
    search_fields = ("name", "spiffe_id", "scopes")
    fields = (
        "name",
        "spiffe_id",
        "enabled",
        "scopes",
        "description",
        "origin",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("origin", "created_at", "updated_at")
    inlines = [ServiceCertificateInline]
    actions = ["disable", "enable", "approve"]
    # Every add, change and delete made here is an audit record too.
    log_addition, log_change, log_deletions = audited_log_methods(admin.ModelAdmin)

    @admin.display(description="origin")
    def origin(self, obj):
        if not obj.self_registered:
            return "operator"
        if obj.approved_at is None:
            return "SELF-REGISTERED, not approved"
        return f"self-registered, approved {obj.approved_at:%Y-%m-%d %H:%M}"

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and obj.awaiting_approval:
            return (*fields, "scopes")
        return fields

    @admin.action(description="Approve the selected self-registered services for scopes")
    def approve(self, request, queryset):
        waiting = list(queryset.filter(self_registered=True, approved_at__isnull=True))
        queryset.filter(pk__in=[p.pk for p in waiting]).update(approved_at=timezone.now())
        invalidate()  # an UPDATE sends no signal: the principal cache is told here
        record_admin_action(request, waiting, "principal_approved")

    @admin.action(description="Disable the selected services (every mechanism refuses them)")
    def disable(self, request, queryset):
        queryset.update(enabled=False)
        invalidate()  # refused by every process now, not within PRINCIPAL_CACHE_SECONDS
        record_admin_action(request, queryset, "principal_disabled")

    @admin.action(description="Enable the selected services")
    def enable(self, request, queryset):
        queryset.update(enabled=True)
        invalidate()
        record_admin_action(request, queryset, "principal_enabled")
