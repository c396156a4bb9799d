"""`python -m fleamarket up`: everything starts, and SIGTERM leaves nothing behind."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleamarket.processes import free_port

# SQLite pass only (.ci/run): `up` runs on its own SQLite state whatever DATABASE_URL says.
pytestmark = [pytest.mark.live, pytest.mark.single_pass]

ROOT = Path(__file__).resolve().parents[2]


def _bound(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _descendants(pid: int) -> set[int]:
    """Every process whose parent chain leads to ``pid`` (from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed child waiting to be reaped runs nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _assert_private(var: Path) -> None:
    """Local state: directories 0700, files 0600 (databases, logs, keys, certificates)."""
    checked = [var / "users.sqlite3", var / "ads.sqlite3", var / "logs" / "users.log"]
    checked += [var / "pki", var / "logs", *sorted((var / "pki").iterdir())]
    for path in checked:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {mode:o}"


def _start_up(tmp_path, *extra):
    ports = free_port(), free_port()
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "GUNICORN_WORKERS")
        },
        "VAR_DIR": str(tmp_path),
        "FLEAMARKET_USERS_PORT": str(ports[0]),
        "FLEAMARKET_ADS_PORT": str(ports[1]),
    }
    log = open(tmp_path / "up.log", "w")  # noqa: SIM115 - closed by the caller
    process = subprocess.Popen(
        [sys.executable, "-m", "fleamarket", "up", *extra],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, ports, log


def _wait_for(path: Path, text: str, process, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text():
            return
        assert process.poll() is None, path.read_text()
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not seen:\n{path.read_text()}")


def test_up_serves_and_sigterm_stops_every_child(tmp_path):
    process, ports, log = _start_up(tmp_path, "--no-jobs")
    try:
        _wait_for(tmp_path / "up.log", "Ctrl-C stops everything", process)
        assert all(_bound(port) for port in ports)
        # GUNICORN_WORKERS (default 2) worker processes under each service's master; a
        # master listens before it has forked them all, so wait for them (bounded).
        deadline = time.monotonic() + 30
        while True:
            children = _descendants(process.pid)
            gunicorns = [pid for pid in children if "gunicorn" in _cmdline(pid)]
            if len(gunicorns) >= 2 * (1 + 2) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert children, "up started no processes?"
        assert len(gunicorns) == 2 * (1 + 2), [_cmdline(pid) for pid in children]
        # The certificates no service renews have an agent each (and SIGTERM stops it).
        agents = sorted(
            _cmdline(pid).split("--name")[-1].strip()
            for pid in children
            if "s2s_pki agent" in _cmdline(pid)
        )
        assert agents == ["prometheus", "proxy"], [_cmdline(pid) for pid in children]
        _assert_private(tmp_path)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0 or process.returncode == 130
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    assert not any(_bound(port) for port in ports)
    alive = {pid for pid in children if _running(pid)}
    assert not alive, f"orphans: {alive}"


def test_sigterm_while_starting_leaves_nothing_behind(tmp_path):
    process, ports, log = _start_up(tmp_path, "--no-jobs")
    try:
        _wait_for(tmp_path / "up.log", "preparing", process)
        time.sleep(1.0)  # inside prepare/start
        children = _descendants(process.pid)
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    time.sleep(0.5)
    assert not any(_bound(port) for port in ports)
    started_later = {pid for pid in children if _running(pid)}
    assert not started_later, f"orphans: {started_later}"
