# ruff: noqa: F821 - INSTALLED_APPS, MIDDLEWARE and DATABASES are your project's own
INSTALLED_APPS += ["rest_framework", "s2s_auth"]

# The audit record of an accepted request commits with the view's own writes.
MIDDLEWARE += ["s2s_auth.audit.middleware.AuditMiddleware"]

# Failures as {"error": "<reason code>", "detail": "..."}.
REST_FRAMEWORK = {"EXCEPTION_HANDLER": "s2s_auth.errors.exception_handler"}

S2S_AUTH = {
    "SERVICE_NAME": "users",  # this service is spiffe://example.org/service/users
    "TRUST_DOMAIN": "example.org",  # yours: no default, every service names it
    "PKI_DIR": "var/pki",  # ca.pem, crl.pem, users.pem, users.key (relative to BASE_DIR)
    # What a ServiceAPIView accepts, tried in this order.
    "MECHANISMS": ["service_jwt", "mtls"],
}

# The audit log writes a row per request: keep database connections open.
DATABASES["default"]["CONN_MAX_AGE"] = 60

# The replay store (used jti and nonces) and the throttles: a cache every worker
# process shares. A table in this database (`migrate` creates it), or Redis.
CACHES = {
    "default": {
        "BACKEND": "s2s_auth.credentials.dbcache.ReplayDatabaseCache",
        "LOCATION": "s2s_cache",
    }
}
