"""Batch jobs of AdService (Celery): they run as the worker's own service, with no end user."""
