"""The audit fixtures (a caller certificate, signed requests) serve the admin tests too."""

from tests.s2s_auth.audit.conftest import *  # noqa: F403
