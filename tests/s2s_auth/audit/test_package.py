"""``s2s_auth.audit`` re-exports the public API of its modules."""

from __future__ import annotations

import s2s_auth.audit as audit


def test_every_exported_name_exists():
    missing = [name for name in audit.__all__ if not hasattr(audit, name)]
    assert not missing


def test_the_names_callers_use_are_exported():
    used = {
        "AnchorCheck",
        "Decision",
        "GENESIS",
        "HASHED_FIELDS",
        "compute_hash",
        "credential_hash",
        "decode_jwt_unverified",
        "export_record",
        "heads",
        "prune",
        "record_decision",
        "reset_writer_chains",
        "verify_all",
        "verify_credential",
    }
    assert used <= set(audit.__all__)
