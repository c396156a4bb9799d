"""SPIFFE_ID_PATHS: an Istio-style ID maps to a principal when configured, for mTLS,
service JWTs and the token endpoint, and is refused (bad_spiffe_id) when not."""

from __future__ import annotations

import pytest

from s2s_auth.client.auth import ServiceCredentials, ServiceJWTAuth
from s2s_auth.credentials.principals import ensure_principal
from s2s_auth.identity import (
    name_from_path,
    service_name,
    spiffe_id,
    spiffe_ids,
    validate_path_templates,
)

TD = "fleamarket.local"
ISTIO = ["/service/{name}", "/ns/default/sa/{name}"]
ISTIO_ID = f"spiffe://{TD}/ns/default/sa/caller"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/service/users", "users"),
        ("/ns/default/sa/users", "users"),
        ("/ns/default/sa/users/extra", None),  # matched whole
        ("/x/ns/default/sa/users", None),
        ("/ns/other/sa/users", None),
        ("/ns/default/sa/Users", None),
        ("/service/users\n", None),
        ("/service", None),
    ],
)
def test_templates_are_matched_whole(path, name):
    assert name_from_path(path, ISTIO) == name


def test_the_default_layout_alone_when_not_configured():
    assert name_from_path("/service/users") == "users"
    assert name_from_path("/ns/default/sa/users") is None


def test_a_path_two_templates_read_differently_is_refused():
    assert name_from_path("/a/b", ["/a/{name}", "/{name}/b"]) is None
    assert name_from_path("/a/a", ["/a/{name}", "/{name}/a"]) == "a"


@pytest.mark.parametrize(
    "value",
    [
        [],
        "",
        ["service/{name}"],
        ["/service/{name}/{name}"],
        ["/service/x{name}"],
        ["/service"],
        ["/../{name}"],
        ["/a b/{name}"],
        ["/service/{name}", "/service/{name}"],
        [3],
    ],
)
def test_bad_templates_are_refused(value):
    with pytest.raises(ValueError):
        validate_path_templates(value)


def test_a_comma_separated_string_is_a_list():
    assert validate_path_templates(" /service/{name} , /ns/default/sa/{name}") == tuple(ISTIO)


@pytest.fixture
def istio(ca, settings, db):
    settings.S2S_AUTH = {
        "SERVICE_NAME": "users",
        "TRUST_DOMAIN": TD,
        "PKI_DIR": str(ca.directory),
        "SPIFFE_ID_PATHS": "/ns/default/sa/{name},/service/{name}",
    }
    return ca


def test_ids_are_built_and_issued_in_the_first_layout(istio):
    assert spiffe_id("caller") == ISTIO_ID
    assert spiffe_ids("users") == [
        f"spiffe://{TD}/ns/default/sa/users",
        f"spiffe://{TD}/service/users",
    ]
    assert service_name(f"spiffe://{TD}/service/caller", TD) == "caller"
    issued = istio.issue("caller")
    assert issued.spiffe_id == ISTIO_ID
    assert ServiceCredentials.from_files(issued.cert_path, issued.key_path).spiffe_id == ISTIO_ID


@pytest.fixture
def istio_caller(ca, make_leaf, settings, db):
    settings.S2S_AUTH = {
        "SERVICE_NAME": "users",
        "TRUST_DOMAIN": TD,
        "PKI_DIR": str(ca.directory),
        "SPIFFE_ID_PATHS": ISTIO,
    }
    ensure_principal("caller", ["test:read"])  # stored as .../service/caller
    return make_leaf(ca, "caller", uris=[ISTIO_ID])


def test_mtls_maps_an_istio_id_when_configured(client, istio_caller):
    response = client.get("/mtls/scoped", SSL_CLIENT_CERT=istio_caller.chain_pem.decode())
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "caller"


def test_mtls_refuses_an_istio_id_when_not_configured(client, istio_caller, settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "SPIFFE_ID_PATHS": ["/service/{name}"]}
    response = client.get("/mtls/scoped", SSL_CLIENT_CERT=istio_caller.chain_pem.decode())
    assert response.status_code == 403
    assert response.json()["error"] == "bad_spiffe_id"


def _credentials(leaf, tmp_path):
    cert, key = tmp_path / "caller.pem", tmp_path / "caller.key"
    cert.write_bytes(leaf.chain_pem)
    key.write_bytes(leaf.key_pem)
    return ServiceCredentials.from_files(cert, key)


def test_service_jwt_from_an_istio_id(client, istio_caller, tmp_path):
    creds = _credentials(istio_caller, tmp_path)
    for audience in ("users", f"spiffe://{TD}/ns/default/sa/users"):
        token = ServiceJWTAuth(creds, audience).token()
        response = client.get("/jwt/scoped", HTTP_AUTHORIZATION=f"ServiceJWT {token}")
        assert response.status_code == 200, response.json()
        assert response.json()["name"] == "caller"


def test_service_jwt_from_an_istio_id_refused_when_not_configured(
    client, istio_caller, tmp_path, settings
):
    creds = _credentials(istio_caller, tmp_path)
    token = ServiceJWTAuth(creds, "users").token()
    settings.S2S_AUTH = {**settings.S2S_AUTH, "SPIFFE_ID_PATHS": ["/service/{name}"]}
    response = client.get("/jwt/scoped", HTTP_AUTHORIZATION=f"ServiceJWT {token}")
    assert response.status_code == 403
    assert response.json()["error"] == "bad_spiffe_id"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SPIFFE_ID_PATHS", ["/service/name"]),
        ("SPIFFE_ID_PATHS", "/ns/{name}/sa/{name}"),
        ("JWT_SVID_ALGORITHMS", ["HS256"]),
        ("SPIFFE_JWT_BUNDLES", {TD: 3}),
    ],
)
def test_manage_py_check_refuses_bad_spiffe_settings(settings, key, value):
    from s2s_auth.checks import check_settings

    settings.S2S_AUTH = {**settings.S2S_AUTH, key: value}
    ids = [error.id for error in check_settings()]
    assert "s2s_auth.E030" in ids


def test_manage_py_check_accepts_the_istio_layout(settings):
    from s2s_auth.checks import check_settings

    settings.S2S_AUTH = {**settings.S2S_AUTH, "SPIFFE_ID_PATHS": ISTIO}
    assert "s2s_auth.E030" not in [error.id for error in check_settings()]


def test_a_remembered_service_name_follows_the_templates_and_trust_domain(settings):
    """service_name() remembers its answers per (ID, trust domain, templates): a change
    of SPIFFE_ID_PATHS or another trust domain gets its own answer at once."""
    settings.S2S_AUTH = {"TRUST_DOMAIN": TD}
    assert service_name(ISTIO_ID, TD) is None  # the default layout alone
    assert service_name(f"spiffe://{TD}/service/caller", TD) == "caller"
    assert service_name(f"spiffe://{TD}/service/caller", "other.test") is None
    settings.S2S_AUTH = {"TRUST_DOMAIN": TD, "SPIFFE_ID_PATHS": ISTIO}
    assert service_name(ISTIO_ID, TD) == "caller"
    assert service_name(ISTIO_ID, TD) == "caller"
    settings.S2S_AUTH = {"TRUST_DOMAIN": TD}
    assert service_name(ISTIO_ID, TD) is None
    assert service_name(None, TD) is None
    assert service_name(f"spiffe://{TD}/service/caller", None) is None


def test_remembered_service_names_stay_bounded():
    from s2s_auth import identity

    for i in range(identity._SERVICE_NAMES_MAX + 10):
        service_name(f"spiffe://{TD}/service/s{i}", TD)
    assert len(identity._service_names) <= identity._SERVICE_NAMES_MAX
    assert service_name(f"spiffe://{TD}/service/s3", TD) == "s3"
    service_name("spiffe://" + "a" * 5000, TD)
    assert not [k for k in identity._service_names if len(k[0]) > 2048]
