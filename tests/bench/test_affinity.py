"""Pinning for the database-on-its-own-core cases: a real process tree and real
PostgreSQL backends get the CPUs asked for, and everything is given back after."""

import contextlib
import os
import subprocess
import sys
import time

import pytest

from bench import affinity

pytestmark = pytest.mark.skipif(
    not isinstance(affinity.split(), tuple), reason="needs two usable CPUs"
)

CHILD = (
    "import threading, time\n"
    "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def server():
    """A process with a child, both with a second thread: a gunicorn-like tree."""
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys\n"
            f"child = subprocess.Popen([sys.executable, '-c', {CHILD!r}])\n{CHILD}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout.readline().strip() == "ready"
    yield parent
    for pid in affinity.tasks(parent.pid)[::-1]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    parent.wait(10)


def cpus_of(pids):
    return {pid: os.sched_getaffinity(pid) for pid in pids}


def test_the_server_tree_and_the_caller_are_pinned_then_given_back(server):
    app, db = affinity.split()
    before = os.sched_getaffinity(0)
    with affinity.Pinning(server.pid, None, (app, db)) as pins:
        deadline = time.monotonic() + 10
        while len(affinity.tasks(server.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)  # the child and its thread are starting
        pins._scan()
        tasks = affinity.tasks(server.pid)
        assert len(tasks) >= 4  # two processes, two threads each
        assert all(cpus == app for cpus in cpus_of(tasks).values())
        assert os.sched_getaffinity(0) == app
    assert os.sched_getaffinity(0) == before
    assert all(cpus == app | db for cpus in cpus_of(affinity.tasks(server.pid)).values())
    assert pins.summary()["refused"] == ""


def test_the_backends_of_a_database_are_found_and_pinned(server):
    psycopg = pytest.importorskip("psycopg")
    url = "postgres://postgres@127.0.0.1:5432/postgres"
    try:
        other = psycopg.connect(url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL: {exc}")
    with other:
        pid = other.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert pid in affinity.backends(url)
        app, db = affinity.split()
        with affinity.Pinning(server.pid, url, (app, db)) as pins:
            assert os.sched_getaffinity(pid) == db
            assert pins.summary()["backends_pinned"] >= 1
        assert os.sched_getaffinity(pid) == app | db
