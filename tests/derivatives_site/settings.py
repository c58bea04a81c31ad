"""The test project with derivatives, for servers started by tests/test_derivative_live.py.

Environment (set by the tests):

- ``FILERESPONSE_TEST_DERIVATIVES_ROOT``: the derivative root on disk;
- ``FILERESPONSE_TEST_DERIVATIVES_STORAGE``: an alias of ``STORAGES`` (e.g. ``minio``)
  to store derivatives in instead;
- ``FILERESPONSE_TEST_LOCK_DIR``: the directory of the lock files;
- ``FILERESPONSE_TEST_URLCONF``: another URLconf (the queue tests: derivatives only);
- ``FILERESPONSE_TEST_SETTINGS``: more ``FILERESPONSE`` keys, as JSON (e.g. the
  ``DERIVATIVES_COMMANDS`` of tests/test_derivative_streaming.py);
- and those of tests/project/settings.py (media root, MinIO).

``fileresponse.derivatives`` logs at INFO to stderr, so the server's log shows
each ``generated`` record.
"""

import json
import os

from tests.project.settings import *  # noqa: F403
from tests.project.settings import LOGGING

ROOT_URLCONF = os.environ.get("FILERESPONSE_TEST_URLCONF") or "tests.derivatives_site.urls"

FILERESPONSE = {
    "DERIVATIVES_ROOT": os.environ.get("FILERESPONSE_TEST_DERIVATIVES_ROOT") or None,
    "DERIVATIVES_STORAGE": os.environ.get("FILERESPONSE_TEST_DERIVATIVES_STORAGE") or None,
    "DERIVATIVES_LOCK_DIR": os.environ.get("FILERESPONSE_TEST_LOCK_DIR") or None,
    "DERIVATIVES_WORKERS": 1,
    **json.loads(os.environ.get("FILERESPONSE_TEST_SETTINGS") or "{}"),
}

LOGGING = {
    **LOGGING,
    "loggers": {
        **LOGGING["loggers"],  # type: ignore[dict-item]
        "fileresponse.derivatives": {
            "handlers": ["stderr"],
            "level": "INFO",
            "propagate": False,
        },
    },
}
