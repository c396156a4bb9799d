"""URLs of the issuer tests (owned by those tests)."""

urlpatterns: list = []
