"""Django admin for API keys. Import this module from ``s2s_auth/admin.py``.

The secret is never shown: a key created here is displayed once, in the message
after saving; the list and change pages show the public key id and the state only.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from s2s_auth.audit.changes import audited_log_methods, record_admin_action
from s2s_auth.credentials.apikeys import hash_secret, new_key_material
from s2s_auth.credentials.cache import invalidate
from s2s_auth.models import APIKey


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    list_display = (
        "key_id",
        "principal",
        "status",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    list_filter = ("revoked_at", "expires_at")
    list_select_related = ("principal",)
    search_fields = ("key_id", "principal__name", "description")
    raw_id_fields = ()
    actions = ["revoke"]
    # Every add, change and delete made here is an audit record too.
    log_addition, log_change, log_deletions = audited_log_methods(admin.ModelAdmin)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("principal", "description", "expires_at")
        return (
            "key_id",
            "principal",
            "description",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("key_id", "principal", "created_at", "revoked_at", "last_used_at")

    def save_model(self, request, obj, form, change):
        if not change:
            key_id, secret, plaintext = new_key_material()
            obj.key_id = key_id
            obj.secret_hash = hash_secret(secret)
            super().save_model(request, obj, form, change)
            request._s2s_new_api_key = plaintext
            return
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        """Show the new key once, on this response only: not through ``messages``,
        whose cookie/session storage would keep the plaintext around."""
        plaintext = getattr(request, "_s2s_new_api_key", None)
        if plaintext is None:  # pragma: no cover - save_model always sets it
            return super().response_add(request, obj, post_url_continue)
        changelist = reverse("admin:s2s_auth_apikey_changelist")
        response = HttpResponse(
            format_html(
                "<!doctype html><title>New API key</title>"
                "<p>New API key for <b>{}</b> (id {}). Copy it now: it is not stored "
                "and will not be shown again.</p><pre>{}</pre>"
                '<p><a href="{}">Back to the API keys</a></p>',
                obj.principal.name,
                obj.key_id,
                plaintext,
                changelist,
            )
        )
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected API keys")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        invalidate()  # an UPDATE sends no signal: refused everywhere now
        record_admin_action(request, queryset, "apikey_revoked")
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)
