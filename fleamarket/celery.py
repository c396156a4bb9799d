"""The Celery app of the deployment: batch jobs that run in AdService's code base.

    celery -A fleamarket.celery worker -l INFO      # runs the jobs
    celery -A fleamarket.celery beat -l INFO        # enqueues them on their schedule

(``python -m fleamarket up`` starts both.) Configuration comes from the Django
settings under the ``CELERY_`` namespace (see ``fleamarket.settings.celery_settings``);
tasks are discovered in the ``tasks`` module of every installed app. The worker runs
with AdService's settings unless ``DJANGO_SETTINGS_MODULE`` says otherwise.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ads.settings")

app = Celery("fleamarket")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

__all__ = ["app"]
