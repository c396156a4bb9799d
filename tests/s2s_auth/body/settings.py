"""The s2s_auth test project with a view that reads a body, served by gunicorn.

``S2S_TEST_BODY_MIDDLEWARE=0`` leaves ``UnreadableBodyMiddleware`` out: what Django does
without it (a 500).
"""

import os

from tests.s2s_auth.settings import *  # noqa: F403
from tests.s2s_auth.settings import MIDDLEWARE

ROOT_URLCONF = "tests.s2s_auth.body.urls"
if os.environ.get("S2S_TEST_BODY_MIDDLEWARE", "1") != "0":
    MIDDLEWARE = ["s2s_auth.middleware.UnreadableBodyMiddleware", *MIDDLEWARE]
