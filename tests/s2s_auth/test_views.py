"""ServiceAPIView: mechanisms named in S2S_AUTH["MECHANISMS"], built-in or third-party."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from s2s_auth.mechanisms import MECHANISM_CLASSES, mechanism_classes
from s2s_auth.mechanisms.mtls import MTLSAuthentication
from tests.s2s_auth.views import PartnerAuthentication

PARTNER = "tests.s2s_auth.views.PartnerAuthentication"


@pytest.fixture
def mechanisms(settings):
    def use(*names):
        settings.S2S_AUTH = {**settings.S2S_AUTH, "MECHANISMS": list(names)}

    return use


def test_short_names_and_dotted_paths_resolve_in_order():
    assert mechanism_classes(["mtls", PARTNER]) == [MTLSAuthentication, PartnerAuthentication]
    assert set(MECHANISM_CLASSES) == {
        "mtls",
        "service_jwt",
        "jwt_svid",
        "http_signature",
        "access_token",
        "api_key",
    }


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("kerberos", "Unknown s2s mechanism 'kerberos'"),
        ("tests.s2s_auth.views.NoSuchClass", "cannot import"),
        ("no_such_package.Authentication", "cannot import"),
        ("tests.s2s_auth.views.NotAnAuthenticator", "not a subclass"),
        ("", "is not a mechanism name"),
    ],
)
def test_bad_names_name_the_setting(name, message):
    with pytest.raises(ImproperlyConfigured) as excinfo:
        mechanism_classes(["mtls", name])
    assert "S2S_AUTH['MECHANISMS']" in str(excinfo.value)
    assert message in str(excinfo.value)


def test_a_string_instead_of_a_list_is_refused():
    with pytest.raises(ImproperlyConfigured, match="must be a list"):
        mechanism_classes("mtls")


def test_third_party_mechanism_protects_a_service_view(client, db, mechanisms):
    mechanisms(PARTNER)
    response = client.get("/service/scoped", HTTP_X_PARTNER="acme")
    assert response.status_code == 200, response.content
    assert response.json()["spiffe_id"] == "spiffe://partner.test/service/acme"
    assert response.json()["mechanism"] == "partner"
    anonymous = client.get("/service/scoped")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == 'Partner realm="test"'


def test_the_setting_decides_per_request(client, db, mechanisms):
    mechanisms("mtls")
    assert client.get("/service/scoped", HTTP_X_PARTNER="acme").status_code == 401
    mechanisms("mtls", PARTNER)
    assert client.get("/service/scoped", HTTP_X_PARTNER="acme").status_code == 200


def test_an_unknown_mechanism_fails_loudly_not_open(client, db, mechanisms):
    mechanisms("mtls", "kerberos")
    with pytest.raises(ImproperlyConfigured, match="kerberos"):
        client.get("/service/scoped", HTTP_X_PARTNER="acme")
