"""Fixtures shared by the mechanisms' tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def parsed_ids(monkeypatch):
    """Every SPIFFE ID parsed (the real parser, counted)."""
    from s2s_auth import identity

    seen: list[str] = []
    real = identity.parse_spiffe_id

    def counted(value):
        seen.append(value)
        return real(value)

    monkeypatch.setattr(identity, "parse_spiffe_id", counted)
    identity._service_names.clear()  # names remembered by earlier tests
    return seen
