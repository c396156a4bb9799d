from django.contrib import admin

from .models import Ad


@admin.register(Ad)
class AdAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "kind", "status", "price", "currency", "seller_id", "expires_at")
    list_filter = ("kind", "status", "currency")
    search_fields = ("title", "description")
    date_hierarchy = "created_at"
