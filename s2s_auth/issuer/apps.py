from django.apps import AppConfig


class IssuerConfig(AppConfig):
    name = "s2s_auth.issuer"
    label = "s2s_issuer"
    verbose_name = "Identity service"
    default_auto_field = "django.db.models.BigAutoField"
