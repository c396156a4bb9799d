from django.contrib import admin

from .models import Profile


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ("user_id", "display_name", "city", "rating", "member_since")
    list_filter = ("city",)
    search_fields = ("display_name", "user__username", "city")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
