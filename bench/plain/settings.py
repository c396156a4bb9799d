"""users' settings with the bench-only URLconf (``bench.plain.urls``): previews open."""

from users.settings import *  # noqa: F403 - users' settings, one line changed

ROOT_URLCONF = "bench.plain.urls"
