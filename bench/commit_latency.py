"""What a durable commit costs on this machine: the floor under every case that waits
for one (an audit group commit, a replay-store INSERT on PostgreSQL).

* ``fdatasync``: a 4 KiB write made durable in the bench's working directory (where
  the SQLite databases are), the median of 30. SQLite in WAL mode with
  ``synchronous=NORMAL`` pays it at each checkpoint, not at each commit.
* ``postgres_sync`` / ``postgres_async``: a one-row INSERT committed in autocommit on
  the bench's PostgreSQL database, ``synchronous_commit`` on (the default: the commit
  returns once the WAL is on disk) and off, the median of 50 each.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from pathlib import Path


def _median_ms(call, count: int) -> float:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1e3, 3)


def fdatasync_ms(directory: Path, count: int = 30) -> float:
    path = directory / f"fsync-probe-{uuid.uuid4().hex}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        block = b"\0" * 4096
        return _median_ms(lambda: (os.pwrite(fd, block, 0), os.fdatasync(fd)), count)
    finally:
        os.close(fd)
        path.unlink()


def postgres_ms(url: str, count: int = 50) -> dict[str, float]:
    import psycopg

    table = f"commit_probe_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f"CREATE TABLE {table} (x integer)")
        try:
            result = {}
            for mode in ("on", "off"):
                conn.execute(f"SET synchronous_commit = {mode}")
                insert = f"INSERT INTO {table} VALUES (1)"  # noqa: S608 - our own name
                key = "postgres_sync" if mode == "on" else "postgres_async"
                result[key] = _median_ms(lambda insert=insert: conn.execute(insert), count)
            return result
        finally:
            conn.execute(f"DROP TABLE {table}")


def measure(directory: Path, postgres_url: str | None) -> dict[str, float]:
    result = {"fdatasync": fdatasync_ms(directory)}
    if postgres_url:
        result.update(postgres_ms(postgres_url))
    return result
