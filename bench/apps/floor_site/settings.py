"""The floor of any Django response (peers django-floor-*): an async view, a 4 KiB HttpResponse.

No file is opened per request: the bytes of small.bin are read once, at start-up.
With BENCH_MIDDLEWARE=example it has the example project's two middlewares.
"""

from _common import *  # noqa: F403

ROOT_URLCONF = "floor_site.urls"
INSTALLED_APPS: list[str] = []
