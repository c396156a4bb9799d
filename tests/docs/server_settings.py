"""Settings of the live server the docs tests start: the s2s_auth test project with the
docs' URLconf, S2S_AUTH from the environment (JSON in DOCS_S2S_AUTH)."""

import json
import os

from tests.s2s_auth.settings import *  # noqa: F403
from tests.s2s_auth.settings import S2S_AUTH as _DEFAULT_S2S_AUTH

ROOT_URLCONF = "tests.docs.urls"
S2S_AUTH = (
    json.loads(os.environ["DOCS_S2S_AUTH"])
    if "DOCS_S2S_AUTH" in os.environ
    else (_DEFAULT_S2S_AUTH)
)
