from django.contrib import admin

from .models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "kind", "ad_id", "sender", "created", "read_at")
    list_filter = ("kind", "sender", "created")
    search_fields = ("message", "idempotency_key", "user__username", "sender")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    date_hierarchy = "created"
    readonly_fields = ("sender", "idempotency_key", "request_digest", "created")
