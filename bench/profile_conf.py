"""gunicorn configuration of a profiled bench server (``--profile``): s2s_auth's own,
plus the hooks of :mod:`bench.profiling` (cProfile per worker, dumped on exit)."""

from s2s_auth.tls.gunicorn_conf import *  # noqa: F403 - the deployment's configuration
from s2s_auth.tls.gunicorn_conf import post_worker_init as _post_worker_init


def post_worker_init(worker) -> None:
    _post_worker_init(worker)
    from bench.profiling import install

    install(worker)


def worker_exit(server, worker) -> None:
    from bench.profiling import dump

    dump(worker)
