"""The Celery app, its settings, the beat schedule and the tasks' retry policy."""

import pytest
from celery.schedules import crontab
from django.conf import settings

from ads.jobs.schedule import beat_schedule, parse_schedule
from ads.jobs.tasks import expire_stale_ads, refresh_seller_previews
from ads.jobs.users import UsersServiceUnavailable
from fleamarket.celery import app
from fleamarket.settings import celery_settings


def test_tasks_are_registered_under_stable_names():
    app.loader.import_default_modules()
    assert {"jobs.expire_stale_ads", "jobs.refresh_seller_previews"} <= set(app.tasks)


def test_default_broker_is_embedded_under_var(tmp_path):
    conf = celery_settings({"VAR_DIR": str(tmp_path)})
    assert conf["CELERY_BROKER_URL"] == "filesystem://"
    options = conf["CELERY_BROKER_TRANSPORT_OPTIONS"]
    assert (
        options["data_folder_in"]
        == options["data_folder_out"]
        == str(tmp_path / "celery" / "queue")
    )
    assert (tmp_path / "celery" / "queue").is_dir()
    assert conf["CELERY_RESULT_BACKEND"] == f"file://{tmp_path / 'celery' / 'results'}"
    assert conf["CELERY_TASK_ACKS_LATE"] is True


@pytest.mark.parametrize(
    ("broker", "backend"),
    [
        ("redis://127.0.0.1:6379/1", "redis://127.0.0.1:6379/1"),
        ("amqp://guest@127.0.0.1//", "file://"),
    ],
)
def test_a_real_broker_is_chosen_by_the_environment(tmp_path, broker, backend):
    conf = celery_settings({"VAR_DIR": str(tmp_path), "CELERY_BROKER_URL": broker})
    assert conf["CELERY_BROKER_URL"] == broker
    assert conf["CELERY_RESULT_BACKEND"].startswith(backend)
    assert "CELERY_BROKER_TRANSPORT_OPTIONS" not in conf


def test_result_backend_can_be_set_apart(tmp_path):
    conf = celery_settings(
        {"CELERY_BROKER_URL": "amqp://x//", "CELERY_RESULT_BACKEND": "redis://r:6379/2"}
    )
    assert conf["CELERY_RESULT_BACKEND"] == "redis://r:6379/2"


def test_beat_schedule_runs_expiry_nightly_and_previews_every_six_hours():
    schedule = beat_schedule({})
    assert schedule["expire-stale-ads"]["task"] == "jobs.expire_stale_ads"
    assert schedule["expire-stale-ads"]["schedule"] == crontab(minute="30", hour="2")
    assert schedule["refresh-seller-previews"]["task"] == "jobs.refresh_seller_previews"
    assert schedule["refresh-seller-previews"]["schedule"] == crontab(minute="15", hour="*/6")
    assert settings.CELERY_BEAT_SCHEDULE.keys() == schedule.keys()


def test_schedule_from_environment():
    schedule = beat_schedule({"JOBS_EXPIRE_SCHEDULE": "0 3 * * 1", "JOBS_PREVIEWS_SCHEDULE": "90"})
    assert schedule["expire-stale-ads"]["schedule"] == crontab(
        minute="0", hour="3", day_of_week="1"
    )
    assert schedule["refresh-seller-previews"]["schedule"] == 90.0


@pytest.mark.parametrize("value", ["", "0", "* * *", "1 2 3 4 5 6", "soon"])
def test_bad_schedules_are_refused(value):
    with pytest.raises(ValueError, match="schedule"):
        parse_schedule(value)


@pytest.mark.parametrize("task", [expire_stale_ads, refresh_seller_previews])
def test_transient_failures_are_retried_a_bounded_number_of_times(task):
    policy = settings.JOBS_RETRY_POLICY
    assert task.autoretry_for == (UsersServiceUnavailable,)
    assert task.max_retries == policy["max_retries"] > 0
    assert task.retry_backoff == policy["retry_backoff"]
    assert task.retry_backoff_max == policy["retry_backoff_max"]
    assert task.retry_jitter is True
