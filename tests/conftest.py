"""Fixtures every suite can use: throwaway CAs and certificates (tests/pki_fixtures.py)."""

from tests.pki_fixtures import ca, make_leaf, peer_verifier_for, rogue_ca  # noqa: F401
