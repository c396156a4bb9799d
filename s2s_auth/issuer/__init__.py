"""The identity service: OAuth2 client credentials, JWKS, service accounts, user login."""
