"""URLs of the tokens tests (owned by those tests)."""

urlpatterns: list = []
