from django.apps import AppConfig


class S2SAuthConfig(AppConfig):
    name = "s2s_auth"
    verbose_name = "Service-to-service authentication"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_migrate, post_save

        from s2s_auth import checks  # noqa: F401 - registers the system checks
        from s2s_auth.credentials.cache import invalidate
        from s2s_auth.credentials.replay import create_cache_table
        from s2s_auth.models import APIKey, ClientKey, ServiceCertificate, ServicePrincipal

        post_migrate.connect(create_cache_table, sender=self)  # the replay store's table
        # The principal cache: any change to what it holds invalidates it everywhere.
        # (Scopes are a field of ServicePrincipal: a grant or revocation is its save.)
        for model in (ServicePrincipal, ServiceCertificate, ClientKey, APIKey):
            for signal in (post_save, post_delete):
                signal.connect(invalidate, sender=model, dispatch_uid=f"s2s_cache_{model.__name__}")
