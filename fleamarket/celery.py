"""The Celery app of the deployment: batch jobs that run in AdService's code base.

    celery -A fleamarket.celery worker -l INFO      # runs the jobs
    celery -A fleamarket.celery beat -l INFO        # enqueues them on their schedule

(``python -m fleamarket up`` starts both.) Configuration comes from the Django
settings under the ``CELERY_`` namespace (see ``fleamarket.settings.celery_settings``);
tasks are discovered in the ``tasks`` module of every installed app. The worker runs
with AdService's settings unless ``DJANGO_SETTINGS_MODULE`` says otherwise.

The worker's main process runs the certificate renewal agent for the identity it
calls UserService with (``JOBS_IDENTITY``, "worker"): its pool processes read the
renewed files on their next call (``s2s_auth.client``), with no restart.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ads.settings")

app = Celery("fleamarket")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def start_renewal_agent(sender=None, **kwargs) -> None:
    """One agent per worker (in its main process, not in each pool process)."""
    from django.conf import settings

    from s2s_auth import start_agent

    start_agent(getattr(settings, "JOBS_IDENTITY", None))


__all__ = ["app", "start_renewal_agent"]
