from django.apps import AppConfig


class IssuerConfig(AppConfig):
    name = "s2s_auth.issuer"
    label = "s2s_issuer"
    verbose_name = "Identity service"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The core finds our client secrets through this registry; it never imports us.
        from s2s_auth.credentials.principals import register_secret_backend
        from s2s_auth.issuer.clients import ClientSecretBackend

        register_secret_backend(ClientSecretBackend())

        # The token endpoint reads client secrets through the principal cache: a new,
        # changed or deleted secret invalidates it everywhere, like a principal's change.
        from django.db.models.signals import post_delete, post_save

        from s2s_auth.credentials.cache import invalidate
        from s2s_auth.issuer.models import ClientSecret

        for signal in (post_save, post_delete):
            signal.connect(invalidate, sender=ClientSecret, dispatch_uid="s2s_cache_ClientSecret")

        # Our own tokens are verified from our key store, never over HTTP to ourselves.
        from s2s_auth.conf import s2s_settings
        from s2s_auth.core.jwks import register_local_issuer
        from s2s_auth.issuer.keys import key_store

        register_local_issuer(lambda: s2s_settings().ISSUER, lambda: key_store().jwks())

        # Our own CRLs are read (and re-signed when due) from PKI_DIR, never fetched.
        from s2s_auth.core.revocation import register_local_ca

        register_local_ca()
