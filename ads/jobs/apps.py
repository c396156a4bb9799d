from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "ads.jobs"
    label = "jobs"
    verbose_name = "Batch jobs"

    def ready(self):
        # The deployment's Celery app becomes the current app of every process with
        # these settings, so that ``shared_task`` and ``.delay()`` use its broker.
        from fleamarket import celery  # noqa: F401
