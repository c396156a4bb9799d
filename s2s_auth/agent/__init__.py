"""The certificate renewal agent every service runs (:mod:`s2s_auth.agent.agent`).

Started by the TLS gunicorn master (``s2s_auth.tls.gunicorn_conf``'s ``when_ready``),
by ``python manage.py s2s_pki agent``, or by a process of its own
(:func:`start_agent`, e.g. a Celery worker's ``worker_ready`` signal).
"""

from s2s_auth.agent.agent import (
    AgentNotConfigured,
    RenewalAgent,
    RenewalError,
    start_agent,
    start_for_gunicorn,
)

__all__ = [
    "AgentNotConfigured",
    "RenewalAgent",
    "RenewalError",
    "start_agent",
    "start_for_gunicorn",
]
