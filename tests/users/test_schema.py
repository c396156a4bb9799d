"""users' OpenAPI contract: service endpoints name their mechanisms and scopes."""

import pytest


@pytest.fixture
def schema(client, db):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_every_mechanism_has_a_security_scheme(schema):
    assert {"mutualTLS", "ServiceJWT", "oauth2", "httpSignature", "apiKey"} <= set(
        schema["components"]["securitySchemes"]
    )


@pytest.mark.parametrize(
    ("path", "method", "scope"),
    [
        ("/api/v1/users/previews", "get", "users:read"),
        ("/api/v1/users/{user_id}/notifications", "post", "users:notify"),
    ],
)
def test_service_endpoints_name_each_accepted_mechanism_with_its_scope(schema, path, method, scope):
    operation = schema["paths"][path][method]
    security = operation["security"]
    assert {name for requirement in security for name in requirement} == {
        "ServiceJWT",
        "httpSignature",
        "oauth2",
        "mutualTLS",
    }
    assert all(requirement == {next(iter(requirement)): [scope]} for requirement in security)
    assert f"Scopes: {scope}." in operation["description"]


def test_the_identity_service_is_documented(schema):
    token = schema["paths"]["/oauth/token"]["post"]
    assert "application/x-www-form-urlencoded" in token["requestBody"]["content"]
    assert {"clientSecretBasic": []} in token["security"]
    login = schema["paths"]["/api/v1/auth/login"]["post"]
    assert "200" in login["responses"]
