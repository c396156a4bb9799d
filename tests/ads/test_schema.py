"""ads' OpenAPI contract at /api/schema/: every operation names what it accepts."""

import pytest

SCHEMES = {
    "mutualTLS": "mutualTLS",
    "ServiceJWT": "http",
    "oauth2": "oauth2",
    "endUserToken": "http",
    "httpSignature": "apiKey",
    "apiKey": "apiKey",
}


@pytest.fixture
def schema(client, db):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_is_openapi_31_with_a_scheme_per_mechanism(schema):
    assert schema["openapi"] == "3.1.0"
    schemes = schema["components"]["securitySchemes"]
    assert {name: schemes[name]["type"] for name in SCHEMES} == SCHEMES
    assert schemes["ServiceJWT"]["scheme"] == "ServiceJWT"
    assert schemes["oauth2"]["flows"]["clientCredentials"]["tokenUrl"].endswith("/oauth/token")


def test_writes_need_an_end_user_token_reads_are_open(schema):
    ads = schema["paths"]["/api/v1/ads/"]
    end_user = [{"endUserToken": []}, {"endUserSession": []}]  # an app, or a signed-in browser
    assert ads["post"]["security"] == end_user
    assert {} in ads["get"]["security"]
    accept = schema["paths"]["/api/v1/deals/{id}/accept/"]["post"]
    assert accept["security"] == end_user
    assert "Accepts: endUserToken, endUserSession." in accept["description"]
    assert {"401", "403", "404", "409"} <= set(accept["responses"])


def test_nearby_documents_its_query_and_stale_previews(schema):
    nearby = schema["paths"]["/api/v1/ads/nearby"]["get"]
    assert {p["name"] for p in nearby["parameters"]} >= {"lat", "lon", "radius_km"}
    preview = schema["components"]["schemas"]["SellerPreview"]
    assert {"stale", "as_of", "age_seconds"} <= set(preview["properties"])


def test_the_browsable_ui_is_served_with_its_assets(client, db):
    page = client.get("/api/schema/swagger-ui/")
    assert page.status_code == 200
    assert b"swagger-ui" in page.content
    asset = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200
    client.raise_request_exception = False
    escape = client.get("/static/drf_spectacular_sidecar/../../settings.py")
    assert escape.status_code in (400, 404)
