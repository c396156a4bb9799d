"""The s2s_auth test project with a cache its worker processes share (files), so the
live issuer tests see throttles hold across workers; limits from the environment."""

import os

from tests.s2s_auth.settings import *  # noqa: F403
from tests.s2s_auth.settings import S2S_AUTH

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": os.environ["S2S_TEST_CACHE_DIR"],
    }
}
S2S_AUTH = {
    **S2S_AUTH,
    "TOKEN_RATE_LIMIT_PER_MINUTE": int(os.environ.get("S2S_TEST_TOKEN_LIMIT", "600")),
}
