"""Turns among the writers of a SQLite file: another process's turn makes a writer wait
until it is released (in the kernel, no sleep), and no turn is taken in a transaction."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from django.db import connections
from django.db.backends.sqlite3.base import DatabaseWrapper

from s2s_auth.core import sqlite_turns
from tests.s2s_auth.contenders import contender

#: A second process that takes the turn on the file given, says so, and holds it until
#: a line arrives on stdin.
HOLDER = """
import sys
from django.db import connections
from django.db.backends.sqlite3.base import DatabaseWrapper
from s2s_auth.core import sqlite_turns
database = {"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[1]}
settings = connections.configure_settings({"default": database})["default"]
with sqlite_turns.turn(DatabaseWrapper(settings, "held")):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


def _wrapper(name: Path | str) -> DatabaseWrapper:
    """A connection of its own to the SQLite database ``name`` (not yet opened)."""
    database = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(name)}
    return DatabaseWrapper(connections.configure_settings({"default": database})["default"])


@pytest.fixture
def holder(tmp_path):
    database = tmp_path / "db.sqlite3"
    process = contender("-c", HOLDER, str(database))
    assert process.stdout.readline().strip() == "held"
    yield database, process
    process.kill()
    process.wait()


def test_a_writer_waits_for_another_process_s_turn(holder):
    database, process = holder
    assert oct(os.stat(f"{database}-s2s.lock").st_mode & 0o777) == "0o600"
    entered = threading.Event()

    def write() -> None:
        with sqlite_turns.turn(_wrapper(database)):
            entered.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert not entered.wait(0.5)  # the other process holds the turn
    process.stdin.write("go\n")
    process.stdin.flush()
    assert entered.wait(10)
    writer.join()
    assert process.stdout.readline().strip() == "released"


def test_threads_of_one_process_take_turns_too(tmp_path):
    wrapper = _wrapper(tmp_path / "db.sqlite3")
    inside, peak = [0], [0]
    lock = threading.Lock()

    def write() -> None:
        for _ in range(200):
            with sqlite_turns.turn(wrapper):
                with lock:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                with lock:
                    inside[0] -= 1

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 1


def test_no_turn_inside_a_transaction_or_in_memory(holder):
    database, _ = holder
    # A connection in a transaction may hold SQLite's lock: waiting for a turn held by
    # a writer that waits for that lock would deadlock until the busy timeout.
    wrapper = _wrapper(database)
    wrapper.in_atomic_block = True
    entered = threading.Event()

    def write(connection) -> None:
        with sqlite_turns.turn(connection):
            entered.set()

    write(wrapper)
    assert entered.is_set()
    entered.clear()
    write(_wrapper(":memory:"))
    assert entered.is_set()


def test_a_forked_child_takes_turns_even_if_a_parent_thread_held_them(tmp_path):
    """A lock held by another thread of the parent at the fork is not the child's."""
    wrapper = _wrapper(tmp_path / "db.sqlite3")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with sqlite_turns.turn(wrapper), sqlite_turns._turns_lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    inherited_fd = sqlite_turns._for(str(tmp_path / "db.sqlite3")).fd
    pid = os.fork()
    if pid == 0:  # the child: its own file and locks, so its turn comes at once
        signal.alarm(5)  # a deadlocked child dies of SIGALRM: the test fails, not hangs
        with sqlite_turns.turn(_wrapper(tmp_path / "db2.sqlite3")):
            pass
        try:
            os.fstat(inherited_fd)
        except OSError:  # the parent's lock file is closed in the child, not leaked
            os._exit(0)
        os._exit(3)
    release.set()
    holder.join()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
