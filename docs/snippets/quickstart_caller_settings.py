S2S_AUTH = {
    "SERVICE_NAME": "ads",  # spiffe://example.org/service/ads, as in its certificate
    "TRUST_DOMAIN": "example.org",
    "PKI_DIR": "var/pki",  # ca.pem, crl.pem, ads.pem, ads.key
}
USERS_SERVICE_URL = "https://127.0.0.1:8001"
