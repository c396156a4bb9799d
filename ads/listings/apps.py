from django.apps import AppConfig


class ListingsConfig(AppConfig):
    name = "ads.listings"
    label = "listings"
    verbose_name = "Ads"
