"""What a failed test that talked to a live server attaches to its report: the tail of
each server's log and, with py-spy installed, every server process's Python stacks.

A server that answers nothing (a read timeout) leaves no traceback of its own; these
sections show whether its workers booted and where each thread waits.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

LOG_LINES = 60


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(lines[-LOG_LINES:])


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a gunicorn master and its workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(child) for child in children)
    return found


def _stacks(pid: int) -> str:
    beside = Path(sys.executable).with_name("py-spy")  # the venv's, when not on PATH
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if spy is None:
        return "(py-spy not installed: no stacks)"
    dumps = []
    for each in _process_tree(pid):
        try:
            result = subprocess.run(
                [spy, "dump", "--pid", str(each)], capture_output=True, text=True, timeout=30
            )
        except subprocess.TimeoutExpired:
            dumps.append(f"--- pid {each}\n(py-spy took more than 30 s)")
            continue
        dumps.append(f"--- pid {each}\n{result.stdout}{result.stderr}")
    return "\n".join(dumps)


def _servers(value) -> Iterator[tuple[str, Path, int | None]]:
    """(name, log, pid) of the live servers a fixture value stands for."""
    children = getattr(value, "children", None)
    log_path = getattr(value, "log_path", None)
    if isinstance(children, dict) and callable(log_path):  # fleamarket.deployment.Deployment
        for name, child in children.items():
            pid = child.pid if child.poll() is None else None
            yield name, log_path(name), pid
    log = getattr(value, "log", None)
    if isinstance(log, Path):  # a single server: tests/docs/conftest.py's ``live``
        yield "server", log, getattr(value, "pid", None)


def sections(funcargs: dict) -> list[tuple[str, str]]:
    """Report sections for the live servers among a test's fixture values."""
    found = []
    for value in funcargs.values():
        for name, log, pid in _servers(value):
            found.append((f"server log: {name} ({log})", _tail(log)))
            if pid is not None:
                found.append((f"server stacks: {name}", _stacks(pid)))
    return found
