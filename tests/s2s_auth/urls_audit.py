"""URLs of the audit tests (owned by those tests)."""

urlpatterns: list = []
