from django.contrib import admin

from s2s_auth.admin import apikeys, audit  # noqa: F401 - they register their admins
from s2s_auth.audit.changes import audited_log_methods, record_admin_action
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
    list_display = ("name", "spiffe_id", "enabled", "scopes", "updated_at")
    list_filter = ("enabled",)
    search_fields = ("name", "spiffe_id", "scopes")
    fields = ("name", "spiffe_id", "enabled", "scopes", "description", "created_at", "updated_at")
    readonly_fields = ("created_at", "updated_at")
    inlines = [ServiceCertificateInline]
    actions = ["disable", "enable"]
    # Every add, change and delete made here is an audit record too.
    log_addition, log_change, log_deletions = audited_log_methods(admin.ModelAdmin)

    @admin.action(description="Disable the selected services (every mechanism refuses them)")
    def disable(self, request, queryset):
        queryset.update(enabled=False)
        record_admin_action(request, queryset, "principal_disabled")

    @admin.action(description="Enable the selected services")
    def enable(self, request, queryset):
        queryset.update(enabled=True)
        record_admin_action(request, queryset, "principal_enabled")
