"""The audit writer thread under load in a live UserService (gunicorn, two workers, the
TLS worker): a worker killed with SIGKILL mid-load, a graceful stop (SIGTERM), and
every response the clients got counted against the audit rows afterwards.

* ``group_commit``: every answered request has its row (rows may exceed responses by
  the requests in flight when the worker died: their rows committed, their answers
  never arrived);
* ``background``: a SIGTERM loses nothing; a SIGKILL loses at most what the killed
  worker had queued and not yet committed, bounded by ``AUDIT_QUEUE_SIZE`` plus one
  batch (``AUDIT_BATCH_SIZE``);
* ``s2s_audit verify`` passes on the whole table afterwards.

The clients send accepted GETs (mTLS as ``ads``, which has ``users:read``) and refused
ones (no certificate: 401): both kinds go through the writer thread.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import os
import signal
import ssl
import threading
import time
from pathlib import Path

import pytest

from tests.live import live_deployment

PING = "/api/v1/service-ping"
CLIENTS = 4
BATCH, QUEUE = 20, 50


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with live_deployment(tmp_path_factory.mktemp("audit-writer"), services=("users",)) as d:
        yield d


def restart(live, **env: str) -> None:
    """UserService again, with this audit configuration."""
    live.stop_service("users")
    live.extra_env["users"] = {f"S2S_{key}": value for key, value in env.items()}
    live.start_service("users")


def rows(live) -> collections.Counter:
    """Audit rows of the ping by outcome, read by a separate process."""
    code = (
        "import json; from s2s_auth.models import AuditRecord as A; "
        f"print(json.dumps([r for r in A.objects.filter(path={PING!r})"
        ".values_list('outcome', flat=True)]))"
    )
    out = live.manage("users", "shell", "-c", code).stdout
    return collections.Counter(json.loads(out.strip().splitlines()[-1]))


def workers(live) -> list[int]:
    master = live.children["users"].pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


class Load:
    """``CLIENTS`` threads, each alternating a mTLS GET (200) and one without a
    certificate (401) on keep-alive connections; responses counted by status."""

    def __init__(self, live):
        self.port = live.ports["users"]
        pki = live.pki_dir
        self.mtls = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        self.mtls.load_cert_chain(str(pki / "ads.pem"), str(pki / "ads.key"))
        self.anonymous = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        self.answered: collections.Counter = collections.Counter()
        self.failed = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(CLIENTS)]

    def _connect(self, context) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=20)

    def _run(self) -> None:
        connections = {True: None, False: None}
        with_cert = True
        while not self.stop.is_set():
            connection = connections[with_cert] or self._connect(
                self.mtls if with_cert else self.anonymous
            )
            connections[with_cert] = connection
            try:
                connection.request("GET", PING)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                connections[with_cert] = None
                with self.lock:
                    self.failed += 1
                continue
            with self.lock:
                self.answered[status] += 1
            with_cert = not with_cert
        for connection in connections.values():
            if connection is not None:
                connection.close()

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def wait_for(self, answers: int, timeout: float = 60.0) -> None:
        """Until ``answers`` more responses arrived (the load is really running)."""
        with self.lock:
            target = sum(self.answered.values()) + answers
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if sum(self.answered.values()) >= target:
                    return
            time.sleep(0.05)
        raise AssertionError(f"fewer than {answers} answers within {timeout} s")


def run(live, *, kill: bool) -> tuple[collections.Counter, collections.Counter]:
    """Load; SIGKILL one worker in the middle (``kill``); stop UserService gracefully.
    (answered by status, new audit rows by outcome)."""
    before = rows(live)
    with Load(live) as load:
        load.wait_for(100)
        if kill:
            os.kill(workers(live)[0], signal.SIGKILL)
            load.wait_for(100)  # the other worker and the replacement answer on
        load.wait_for(100)
    live.stop_service("users")  # SIGTERM: a graceful stop
    live.start_service("users")
    after = rows(live)
    assert set(load.answered) <= {200, 401}, load.answered
    new = collections.Counter({k: after[k] - before[k] for k in ("accepted", "refused")})
    print(f"answered {dict(load.answered)}, new rows {dict(new)}, failed {load.failed}")
    return load.answered, new


def test_group_commit_keeps_every_answered_record_through_kill_9(live):
    restart(live, AUDIT_WRITE="group_commit")
    answered, new = run(live, kill=True)
    for status, outcome in ((200, "accepted"), (401, "refused")):
        # Rows beyond the answers: requests whose worker died after the commit.
        assert 0 <= new[outcome] - answered[status] <= CLIENTS, (answered, new)


def test_background_loses_nothing_on_sigterm(live):
    # A flush interval longer than the test: only full batches and the exit write.
    restart(
        live,
        AUDIT_WRITE="background",
        AUDIT_FLUSH_INTERVAL="3600",
        AUDIT_BATCH_SIZE=str(BATCH),
        AUDIT_QUEUE_SIZE=str(QUEUE),
    )
    answered, new = run(live, kill=False)
    assert (new["accepted"], new["refused"]) == (answered[200], answered[401])


def test_background_loses_at_most_the_queue_on_kill_9(live):
    restart(
        live,
        AUDIT_WRITE="background",
        AUDIT_FLUSH_INTERVAL="0.05",
        AUDIT_BATCH_SIZE=str(BATCH),
        AUDIT_QUEUE_SIZE=str(QUEUE),
    )
    answered, new = run(live, kill=True)
    lost = (answered[200] - new["accepted"]) + (answered[401] - new["refused"])
    # What the killed worker had queued or was writing; never more. (Rows beyond the
    # answers: answers lost with the worker, up to one per client.)
    assert -CLIENTS <= lost <= QUEUE + BATCH, (answered, new)


def test_the_log_still_verifies(live):
    with contextlib.suppress(Exception):
        live.stop_service("users")
    result = live.manage("users", "s2s_audit", "verify")
    assert "OK:" in result.stdout, result.stdout + result.stderr
