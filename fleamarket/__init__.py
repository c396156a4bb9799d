"""What the fleamarket deployment shares: base settings, the Celery app and the CLI."""
