"""The group commit on a SQLite file, from several processes: every row written and
verifiable, the turns taken through the lock file, and no checkpoint in a commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from s2s_auth.audit.batch_connection import CHECKPOINT_ROWS
from tests.s2s_auth.contenders import contender, race

PROCESSES, THREADS = 2, 4
#: Enough rows per process for two checkpoints.
ROWS = (2 * CHECKPOINT_ROWS) // THREADS + 10


def _writer(path: Path, *args: str) -> subprocess.Popen:
    return contender("-m", "tests.s2s_auth.audit.group_writers", str(path), *args)


def test_processes_share_a_sqlite_file_through_the_group_commit(tmp_path):
    database = tmp_path / "audit.sqlite3"
    assert _writer(database, "migrate").wait(timeout=120) == 0
    writers = [_writer(database, "write", str(ROWS), str(THREADS)) for _ in range(PROCESSES)]
    reports = race(writers, timeout=180)
    for report in reports:
        # The batch connection leaves checkpoints to its thread, which ran them.
        assert report["autocheckpoint"] == 0
        assert report["checkpoints"] >= 1
        assert report["lock_mode"] == "0o600"
    verify = _writer(database, "verify")
    out = verify.communicate(timeout=120)[0]
    total = PROCESSES * THREADS * ROWS
    assert f"OK: {total} records in {PROCESSES} chains" in out, out
