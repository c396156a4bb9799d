from django.apps import AppConfig


class S2SAuthConfig(AppConfig):
    name = "s2s_auth"
    verbose_name = "Service-to-service authentication"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from s2s_auth import checks  # noqa: F401 - registers the system checks
