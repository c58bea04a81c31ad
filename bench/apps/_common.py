"""Settings shared by the two Django benchmark sites (fr_site, stock_site).

Both sites are kept identical except for the view and the ASGI handler, so the
benchmark compares file serving only: DEBUG off, no middleware, no database.
The document root comes from BENCH_DOC_ROOT, set by bench/serve_files.py.
"""

import os

DOC_ROOT = os.environ.get("BENCH_DOC_ROOT", "/tmp")

SECRET_KEY = "bench-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
MIDDLEWARE: list[str] = []
DATABASES: dict = {}
USE_TZ = True
MEDIA_ROOT = DOC_ROOT
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
