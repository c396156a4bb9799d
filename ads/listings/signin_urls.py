"""``/api-auth/``: the browsable API's sign-in for end users, under DRF's names
(``rest_framework:login``/``logout``), so its "Log in" link and form lead here."""

from django.urls import path

from .signin import SignInView, SignOutView

app_name = "rest_framework"
urlpatterns = [
    path("login/", SignInView.as_view(), name="login"),
    path("logout/", SignOutView.as_view(), name="logout"),
]
