"""Settings shared by the Django benchmark sites (fr_site, stock_site, djfile_site, ...).

The sites are kept identical except for the view and the ASGI handler, so the
benchmark compares file serving only: DEBUG off, no middleware, no database.
The document root comes from BENCH_DOC_ROOT, set by bench/serve_files.py.

BENCH_MIDDLEWARE=example gives a site the two middlewares of the example project
(example/example/settings.py), as most sites have them; unset or "none": no middleware.
"""

import os

DOC_ROOT = os.environ.get("BENCH_DOC_ROOT", "/tmp")

#: The example project's MIDDLEWARE.
EXAMPLE_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

SECRET_KEY = "bench-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
_MIDDLEWARES = {"none": [], "example": EXAMPLE_MIDDLEWARE}
MIDDLEWARE: list[str] = list(_MIDDLEWARES[os.environ.get("BENCH_MIDDLEWARE", "none") or "none"])
DATABASES: dict = {}
USE_TZ = True
MEDIA_ROOT = DOC_ROOT
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
