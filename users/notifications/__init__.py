"""Notifications for people, sent by other services (e.g. AdService's nightly jobs)."""
