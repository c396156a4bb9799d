from django.apps import AppConfig


class ListingsConfig(AppConfig):
    name = "ads.listings"
    label = "listings"
    verbose_name = "Ads"

    def ready(self):
        from . import schema  # noqa: F401 - registers the OpenAPI scheme of the sign-in
