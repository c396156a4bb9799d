"""The in-process nonce store (s2s_auth.core.httpsig.nonces)."""

from __future__ import annotations

from s2s_auth.core.httpsig import (
    MemoryNonceStore,
)


def test_memory_nonce_store_expires():
    clock = [0.0]
    store = MemoryNonceStore(clock=lambda: clock[0])
    assert store("k", "n", 10) is True
    assert store("k", "n", 10) is False
    clock[0] = 11
    assert store("k", "n", 10) is True
