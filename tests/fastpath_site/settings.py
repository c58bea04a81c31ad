"""The test project with the ASGI fast path (tests/test_fastpath.py, tests/test_staticfiles.py).

The same files are served twice: by the fast path under ``/fast/...`` and by
Django under the project's URLs (``/files/``, ``/storage/default/``,
``/derivatives/``, ``/static/``), through a middleware that marks its
responses (``X-Test-Middleware``), so that a test sees which route answered.

Environment (set by the tests), beside that of tests/project/settings.py:

- ``FILERESPONSE_TEST_STATIC_SOURCE``: the directory collectstatic collects from;
- ``FILERESPONSE_TEST_STATIC_ROOT``: ``STATIC_ROOT``;
- ``FILERESPONSE_TEST_DERIVATIVES_ROOT``, ``FILERESPONSE_TEST_LOCK_DIR``: as in
  tests/derivatives_site/settings.py.
"""

import os

from tests.project.settings import *  # noqa: F403
from tests.project.settings import INSTALLED_APPS, MEDIA_ROOT, STORAGES, TESTS_DIR

INSTALLED_APPS = [*INSTALLED_APPS, "django.contrib.staticfiles"]
MIDDLEWARE = ["tests.fastpath_site.middleware.mark_response"]
ROOT_URLCONF = "tests.fastpath_site.urls"

STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("FILERESPONSE_TEST_STATIC_ROOT") or str(TESTS_DIR / "static-root")
STATICFILES_DIRS = [
    directory for directory in [os.environ.get("FILERESPONSE_TEST_STATIC_SOURCE")] if directory
]
STORAGES = {
    **STORAGES,
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
    },
}

FILERESPONSE = {
    "DERIVATIVES_ROOT": os.environ.get("FILERESPONSE_TEST_DERIVATIVES_ROOT") or None,
    "DERIVATIVES_LOCK_DIR": os.environ.get("FILERESPONSE_TEST_LOCK_DIR") or None,
    "DERIVATIVES_WORKERS": 1,
    "FAST_PATHS": {
        "/fast/files/": {"root": MEDIA_ROOT},
        "/fast/storage/": {"storage": "default"},
        "/fast/derivatives/": "derivatives",
        "/fast/static/": "static",
    },
    # What the fast path adds, where the Django route does not.
    "FAST_PATH_HEADERS": {"Access-Control-Allow-Origin": "*", "X-Content-Type-Options": "nosniff"},
}
