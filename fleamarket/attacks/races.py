"""One credential sent many times at once, each copy on a fresh connection.

UserService runs several gunicorn worker processes (``GUNICORN_WORKERS``, default 2):
copies sent at once land on different processes, so a replay store kept per process
would accept more than one. One acceptance is the victim's own call; any other is the
attack getting through.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable

from .results import Probe

COPIES = 12


def copies_at_once(lab, send: Callable[[str], Probe], copies: int = COPIES) -> list[Probe]:
    """``send(label)`` ``copies`` times in parallel; the probes minus the first acceptance."""
    workers = lab.deployment.workers
    labels = [f"copy {i + 1} of {copies} at once ({workers} workers)" for i in range(copies)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=copies) as pool:
        probes = list(pool.map(send, labels))
    first = next((p for p in probes if p.accepted), None)
    return [p for p in probes if p is not first]


__all__ = ["COPIES", "copies_at_once"]
