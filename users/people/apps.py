from django.apps import AppConfig


class PeopleConfig(AppConfig):
    name = "users.people"
    label = "people"
    verbose_name = "People"
