"""A failed test reports its live servers' log tails and Python stacks
(tests/server_evidence.py, hooked in tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

from tests.server_evidence import LOG_LINES, sections

STUCK = "import time\ndef waits_for_a_lock():\n    time.sleep(60)\nwaits_for_a_lock()\n"


def test_a_stuck_server_is_reported_with_its_log_tail_and_stacks(tmp_path):
    log = tmp_path / "gunicorn.log"
    log.write_text("".join(f"line {n}\n" for n in range(LOG_LINES + 10)))
    server = subprocess.Popen([sys.executable, "-c", STUCK])
    try:
        time.sleep(1.0)  # in its sleep
        found = dict(sections({"live": SimpleNamespace(log=log, pid=server.pid)}))
    finally:
        server.kill()
        server.wait()
    (tail,) = (text for title, text in found.items() if title.startswith("server log"))
    assert tail.splitlines() == [f"line {n}" for n in range(10, LOG_LINES + 10)]
    (stacks,) = (text for title, text in found.items() if title.startswith("server stacks"))
    assert "waits_for_a_lock" in stacks


def test_values_that_are_no_server_add_nothing(tmp_path):
    assert sections({"tmp_path": tmp_path, "settings": SimpleNamespace(log="not a path")}) == []
