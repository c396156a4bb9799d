"""Processes of the cross-process tests (replay-store races, SQLite turns, group
commits): a Python of this tree, talking over stdin and stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def contender(*argv: str) -> subprocess.Popen:
    """``python *argv`` from the repository's root, without the parent's Django settings
    module (the child configures its own), stdin and stdout as text pipes."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def race(processes: list[subprocess.Popen], timeout: float) -> list:
    """Wait until every process printed ``ready``, release them all at once (a line on
    each stdin), and return the JSON each printed last; every process is killed after."""
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "ready"
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        return [json.loads(process.communicate(timeout=timeout)[0]) for process in processes]
    finally:
        for process in processes:
            process.kill()
