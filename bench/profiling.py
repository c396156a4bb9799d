"""Where a case's server time goes: cProfile in each gunicorn worker, grouped.

``python -m fleamarket bench --profile`` starts the server of each case once more,
with ``bench.profile_conf`` (s2s_auth's gunicorn configuration plus two hooks) and
``BENCH_PROFILE_DIR`` set, runs the case's load against it, and stops it:

* ``install`` (post_worker_init): after the worker's first ``SKIP`` requests, a CPU-time
  profiler (``time.thread_time``: waiting in
  ``select`` costs nothing) on the worker's main thread, which accepts connections,
  runs the TLS handshakes and reads request heads, and one per pool thread around
  ``handle`` (parsing, the Django application, the access log);
* ``dump`` (worker_exit, in the worker): all of them merged into ``worker-PID.prof``.

``summarize`` reads a case's dumps and splits the CPU time into the groups of
``GROUPS``. A group's time is the cumulative time of calls *entering* it from outside,
less the calls it makes to code that is neither its own nor ``INFRA``: a database
query made by the audit write counts as audit write, the view an audit middleware
calls does not. The remainder is Django, DRF and gunicorn. The figures are CPU time
under the profiler, which slows
Python code more than C code: shares, not speeds.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import re
import threading
import time
from pathlib import Path

ENV = "BENCH_PROFILE_DIR"
#: Requests a worker serves before it is profiled (module imports, first queries).
SKIP = 20

#: (group, pattern): a function belongs to the first group whose pattern matches
#: ``file:name`` (for a built-in: its name).
GROUPS: list[tuple[str, re.Pattern]] = [
    ("TLS", re.compile(r"(/ssl\.py:|_ssl\.)")),
    (
        "JWT / signature verify",
        re.compile(
            r"(/site-packages/jwt/|/s2s_auth/core/(jws|jwk|jwks|jose|jwt|httpsig|keys)"
            r"|/http_message_signatures/|/http_sf/|/cryptography/)"
        ),
    ),
    # dbcache: the replay store's table (ReplayDatabaseCache); sqlite_turns: its writes' turns
    (
        "replay store / throttle",
        re.compile(
            r"(/s2s_auth/credentials/(replay|throttles|dbcache)|/s2s_auth/core/sqlite_turns)"
        ),
    ),
    (
        "principal lookup",
        re.compile(
            r"(/s2s_auth/credentials/"
            r"|/s2s_auth/mechanisms/base\.py:(identity_for|identity_from_principal)$)"
        ),
    ),
    ("audit write", re.compile(r"/s2s_auth/audit/")),
    ("logging", re.compile(r"(/logging/__init__\.py:|/gunicorn/glogging\.py:)")),
]
OTHER = "DRF / Django / gunicorn (rest)"
#: What a group's code calls and is charged for: the database, the cache, hashing,
#: serialization. Calls from a group to anything else (the rest of the request, as an
#: audit middleware calling the view, or another group) are not the group's time.
INFRA = re.compile(
    r"(/django/db/|sqlite3|psycopg|/django/core/cache/|/redis/|/json/|_json|hashlib"
    r"|/hmac\.py:|/uuid\.py:|/copy\.py:|/threading\.py:|/django/utils/|/queue\.py:"
    r"|/contextlib\.py:|/functools\.py:)"
)

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()
_local = threading.local()


def _profiler() -> cProfile.Profile:
    profiler = getattr(_local, "profiler", None)
    if profiler is None:
        profiler = _local.profiler = cProfile.Profile(time.thread_time)
        with _lock:
            _profiles.append(profiler)
    return profiler


def install(worker, skip: int = SKIP) -> None:
    """Profile this worker once it has served ``skip`` requests (its first ones import
    modules and fill caches): its main thread from then on, its pool threads per
    request."""
    handle, finish = worker.handle, worker.finish_request
    served = [0]

    def profiled(*args, **kwargs):
        if served[0] < skip:
            return handle(*args, **kwargs)
        profiler = _profiler()
        profiler.enable()
        try:
            return handle(*args, **kwargs)
        finally:
            profiler.disable()

    def counted(*args, **kwargs):  # on the main thread, after each request
        served[0] += 1
        if served[0] == skip:
            _profiler().enable()
        return finish(*args, **kwargs)

    worker.handle = profiled
    worker.finish_request = counted


def dump(worker) -> Path | None:
    """Merge this worker's profiles into ``$BENCH_PROFILE_DIR/worker-PID.prof``."""
    folder = os.environ.get(ENV)
    if not folder or os.getpid() != worker.pid or not _profiles:
        return None  # the master reaping a worker calls the hook too
    _profiler().disable()
    stats = None
    with _lock:
        for profiler in _profiles:
            profiler.disable()
            try:
                stats = pstats.Stats(profiler) if stats is None else stats.add(profiler)
            except TypeError:  # a profiler that never ran
                continue
    if stats is None:
        return None
    path = Path(folder) / f"worker-{os.getpid()}.prof"
    stats.dump_stats(path)
    return path


def _text(key: tuple) -> str:
    filename, _, name = key
    return f"{filename}:{name}" if filename != "~" else name


def _group(key: tuple) -> str:
    text = _text(key)
    for group, pattern in GROUPS:
        if pattern.search(text):
            return group
    return OTHER


def _label(key: tuple) -> str:
    filename, line, name = key
    if filename == "~":
        return re.sub(r" at 0x[0-9a-f]+", "", name)  # no addresses: the same each run
    parts = Path(filename).parts
    for anchor in ("site-packages", "python3.11", "python3.12", "python3.13"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + 1 :]
            break
    else:
        root = Path(__file__).resolve().parent.parent
        with_root = Path(filename)
        if with_root.is_relative_to(root):
            parts = with_root.relative_to(root).parts
    return f"{'/'.join(parts)}:{line}({name})"


def requests_handled(raw: dict) -> int:
    """How many requests the profiled workers served (calls of ``handle_request``)."""
    return max(
        (figures[1] for key, figures in raw.items() if key[2] == "handle_request"), default=0
    )


def summarize(folder: Path, top: int = 8) -> dict:
    """The CPU time of the dumps in ``folder``: per group (ms per request, share) and
    the ``top`` functions by own time."""
    files = sorted(folder.glob("worker-*.prof"))
    if not files:
        raise RuntimeError(f"no profile written in {folder}")
    stats = pstats.Stats(str(files[0]))
    for path in files[1:]:
        stats.add(str(path))
    raw = stats.stats  # key -> (cc, nc, tt, ct, callers)
    requests = requests_handled(raw)
    total = sum(entry[2] for entry in raw.values())
    groups: dict[str, float] = {group: 0.0 for group, _ in GROUPS}
    for key, (_, _, _, _, callers) in raw.items():
        group = _group(key)
        for caller, figures in callers.items():
            caller_group = _group(caller)
            if caller_group == group:
                continue
            if group != OTHER:
                groups[group] += figures[3]  # a call entering the group
            if caller_group != OTHER and not INFRA.search(_text(key)):
                groups[caller_group] -= figures[3]  # a call leaving it, not charged
    groups = {group: max(0.0, seconds) for group, seconds in groups.items()}
    rest = max(0.0, total - sum(groups.values()))
    per = 1000 / max(requests, 1)
    rows = [
        {"group": group, "ms_per_request": seconds * per, "share": seconds / total if total else 0}
        for group, seconds in [*groups.items(), (OTHER, rest)]
    ]
    functions = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:top]
    return {
        "cpu_ms_per_request": total * per,
        "requests": requests,
        "groups": rows,
        "top": [
            {
                "function": _label(key),
                "group": _group(key),
                "own_ms_per_request": figures[2] * per,
                "calls_per_request": figures[1] / max(requests, 1),
            }
            for key, figures in functions
        ],
    }
