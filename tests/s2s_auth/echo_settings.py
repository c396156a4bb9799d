"""Settings of the runserver_tls tests: the s2s_auth test project with the echo URLconf."""

import os

from tests.s2s_auth.settings import *  # noqa: F403
from tests.s2s_auth.settings import S2S_AUTH

ROOT_URLCONF = "tests.s2s_auth.echo_urls"
# The tests point PKI_DIR at their throwaway CA to exercise runserver_tls's defaults.
if os.environ.get("S2S_TEST_PKI_DIR"):
    S2S_AUTH = {**S2S_AUTH, "PKI_DIR": os.environ["S2S_TEST_PKI_DIR"]}
