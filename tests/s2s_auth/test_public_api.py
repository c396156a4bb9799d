"""``s2s_auth.__all__``: the public API, resolved lazily."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import s2s_auth


@pytest.mark.parametrize("name", s2s_auth.__all__)
def test_every_public_name_resolves(name):
    value = getattr(s2s_auth, name)
    assert value is not None
    defining = importlib.import_module(s2s_auth._EXPORTS[name])
    assert value is getattr(defining, name)
    assert name in dir(s2s_auth)


def test_the_names_a_newcomer_needs_are_public():
    wanted = {
        "ServiceAPIView",
        "WhoAmIView",
        "IsService",
        "HasScope",
        "HasRequiredScopes",
        "ServiceIdentity",
        "EndUser",
        "S2SError",
        "MTLSAuthentication",
        "ServiceJWTAuthentication",
        "HTTPSignatureAuthentication",
        "AccessTokenAuthentication",
        "EndUserTokenAuthentication",
        "APIKeyAuthentication",
        "ServiceClient",
        "TokenManager",
        "ServiceJWTAuth",
        "BearerTokenAuth",
    }
    assert wanted <= set(s2s_auth.__all__)
    assert s2s_auth.__all__ == sorted(set(s2s_auth.__all__))


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        s2s_auth.Nope  # noqa: B018


def test_star_import_gives_the_public_names():
    namespace: dict = {}
    exec("from s2s_auth import *", namespace)  # noqa: S102 - a fixed statement
    assert set(s2s_auth.__all__) <= set(namespace)


def test_import_is_cheap_and_safe_before_setup():
    """No settings, no apps: importing the package must not touch either."""
    code = (
        "import sys; import s2s_auth; "
        "print(s2s_auth.__version__, any(m.startswith(('rest_framework', 'django')) "
        "for m in sys.modules))"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.split() == [s2s_auth.__version__, "False"]


def test_authentication_module_reexports_only_drf_classes():
    from rest_framework.authentication import BaseAuthentication

    from s2s_auth import authentication

    for name in authentication.__all__:
        assert issubclass(getattr(authentication, name), BaseAuthentication), name
