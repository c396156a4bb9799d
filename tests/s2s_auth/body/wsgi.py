"""gunicorn's entry point for tests.s2s_auth.body.settings."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.s2s_auth.body.settings")
application = get_wsgi_application()
