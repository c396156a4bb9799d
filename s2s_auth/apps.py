from django.apps import AppConfig


class S2SAuthConfig(AppConfig):
    name = "s2s_auth"
    verbose_name = "Service-to-service authentication"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from s2s_auth import checks  # noqa: F401 - registers the system checks
        from s2s_auth.credentials.replay import create_cache_table

        post_migrate.connect(create_cache_table, sender=self)  # the replay store's table
