"""AdService's beat schedule: when the batch jobs run.

Each entry's time comes from the environment, as a five-field cron expression
(``minute hour day-of-month month day-of-week``, UTC) or a number of seconds:

    JOBS_EXPIRE_SCHEDULE     default "30 2 * * *"   (nightly, 02:30 UTC)
    JOBS_PREVIEWS_SCHEDULE   default "15 */6 * * *" (every six hours)

Imported by ``ads.settings`` (``CELERY_BEAT_SCHEDULE``), so it imports no models.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from celery.schedules import crontab

__all__ = ["beat_schedule", "parse_schedule"]

_SECONDS = re.compile(r"\d+(\.\d+)?")


def parse_schedule(value: str) -> crontab | float:
    """A cron expression as a ``crontab``, or a number of seconds as an interval."""
    value = value.strip()
    if _SECONDS.fullmatch(value):
        seconds = float(value)
        if seconds <= 0:
            raise ValueError(f"schedule {value!r}: an interval must be positive")
        return seconds
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(
            f"schedule {value!r}: give five cron fields "
            "(minute hour day-of-month month day-of-week) or a number of seconds"
        )
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    return crontab(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
    )


def beat_schedule(environ: Mapping[str, str] | None = None) -> dict:
    environ = os.environ if environ is None else environ
    return {
        "expire-stale-ads": {
            "task": "jobs.expire_stale_ads",
            "schedule": parse_schedule(environ.get("JOBS_EXPIRE_SCHEDULE", "30 2 * * *")),
            # A run still queued an hour later is dropped: the next one does its work.
            "options": {"expires": 3600},
        },
        "refresh-seller-previews": {
            "task": "jobs.refresh_seller_previews",
            "schedule": parse_schedule(environ.get("JOBS_PREVIEWS_SCHEDULE", "15 */6 * * *")),
            "options": {"expires": 3600},
        },
    }
