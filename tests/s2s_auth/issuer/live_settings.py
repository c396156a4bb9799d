"""The s2s_auth test project under a real server: the test project's shared replay
store (the database cache, or Redis with CACHE_URL), so live tests see replays and
throttles hold across worker processes; limits and the PKI from the environment."""

import os

from tests.s2s_auth.settings import *  # noqa: F403
from tests.s2s_auth.settings import S2S_AUTH

S2S_AUTH = {
    **S2S_AUTH,
    "TOKEN_RATE_LIMIT_PER_MINUTE": int(os.environ.get("S2S_TEST_TOKEN_LIMIT", "600")),
}
if os.environ.get("S2S_TEST_PKI_DIR"):
    S2S_AUTH["PKI_DIR"] = os.environ["S2S_TEST_PKI_DIR"]
if os.environ.get("S2S_TEST_HTTPSIG_ORIGIN"):
    S2S_AUTH["HTTPSIG_ORIGIN"] = os.environ["S2S_TEST_HTTPSIG_ORIGIN"]
