from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "users.notifications"
    label = "notifications"
    verbose_name = "Notifications"
