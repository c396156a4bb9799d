"""Signing in to ads' browsable API as an end user of UserService.

A browser cannot send ``Authorization: Bearer``, so the browsable API's "Log in"
(``/api-auth/login/``, DRF's ``rest_framework:login``) is this form: ads posts the
username and password to UserService's ``POST /api/v1/auth/login`` server-side, over
its service client (mTLS), and keeps the access token it gets in the Django session
(stored in ads' database, never in the cookie). :class:`.session_auth.SessionTokenAuthentication`
then verifies that token on every request exactly as a Bearer token is verified, so a
browser gets the same end-user identity (the token's ``sub``) an app gets. The session
ends with the token (``expires_in``); signing out flushes it. ads' local accounts
(its admin) sign in at ``/admin/login/``.
"""

from __future__ import annotations

import logging

import requests
from django import forms
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpResponseRedirect
from django.middleware.csrf import rotate_token
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView, View

from .sellers import users_breaker, users_client

__all__ = ["SESSION_TOKEN", "SignInRefused", "SignInView", "SignOutView", "obtain_user_token"]

logger = logging.getLogger(__name__)

#: The session key of the end user's access token.
SESSION_TOKEN = "end_user_token"  # noqa: S105 - a key name, not a secret
LOGIN_PATH = "api/v1/auth/login"
HOME = "/api/v1/"


class SignInRefused(Exception):
    """UserService gave no token: ``status`` is what the form page answers with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def obtain_user_token(username: str, password: str) -> tuple[str, int]:
    """``(access_token, expires_in)`` from UserService's login, or SignInRefused."""
    unavailable = SignInRefused(503, "The sign-in service is unavailable; try again shortly.")
    if not users_breaker.allow():
        raise unavailable
    try:
        response = users_client().post(
            LOGIN_PATH, json={"username": username, "password": password}
        )
    except requests.RequestException as exc:
        users_breaker.failure()
        logger.warning("sign-in: users unreachable: %s", type(exc).__name__)
        raise unavailable from None
    if response.status_code >= 500:
        users_breaker.failure()
        logger.warning("sign-in: users answered HTTP %s", response.status_code)
        raise unavailable
    users_breaker.success()
    if response.status_code == 429:
        raise SignInRefused(429, "Too many sign-in attempts; wait a minute.")
    if response.status_code != 200:
        raise SignInRefused(401, "Invalid username or password.")
    try:
        body = response.json()
        return str(body["access_token"]), int(body.get("expires_in") or 0)
    except (ValueError, KeyError, TypeError):
        logger.warning("sign-in: users answered 200 without a token")
        raise unavailable from None


def next_url(request) -> str:
    """Where to go after signing in or out: ``next`` if it stays on this site."""
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME, "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if safe else HOME


class SignInForm(forms.Form):
    username = forms.CharField(max_length=150)
    password = forms.CharField(max_length=1024, strip=False, widget=forms.PasswordInput)


@method_decorator([sensitive_post_parameters("password"), csrf_protect, never_cache], "dispatch")
class SignInView(FormView):
    """``GET`` the form, ``POST`` the credentials: signed in, back to ``next``."""

    form_class = SignInForm
    template_name = "rest_framework/login.html"

    def next_url(self) -> str:
        return next_url(self.request)

    def get_context_data(self, **kwargs):
        return super().get_context_data(next=self.next_url(), **kwargs)

    def form_valid(self, form):
        try:
            token, expires_in = obtain_user_token(
                form.cleaned_data["username"], form.cleaned_data["password"]
            )
        except SignInRefused as refused:
            form.add_error(None, refused.message)
            return self.render_to_response(self.get_context_data(form=form), status=refused.status)
        session = self.request.session
        session.flush()  # a new session key, and no earlier identity in it
        session[SESSION_TOKEN] = token
        if expires_in > 0:
            session.set_expiry(expires_in)
        rotate_token(self.request)
        logger.info("sign-in: an end user signed in to the browsable API")
        return HttpResponseRedirect(self.next_url())


@method_decorator([csrf_protect, never_cache], "dispatch")
class SignOutView(View):
    """``POST``: the session and the token in it are gone."""

    http_method_names = ["post"]

    def post(self, request):
        request.session.flush()
        return HttpResponseRedirect(next_url(request))
