"""UserService settings: the shared base plus its own apps and URLs."""

from fleamarket.settings import base_settings

globals().update(base_settings("users"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "s2s_auth",
    "users.people",
]
ROOT_URLCONF = "users.urls"
WSGI_APPLICATION = "users.wsgi.application"
