"""Django site for bench/media.py: media derivatives of the files under ``BENCH_DOC_ROOT``.

Derivatives are stored under ``BENCH_DOC_ROOT/derivatives``. ``BENCH_MEDIA_COMMANDS``
(JSON) is the ``DERIVATIVES_COMMANDS`` table: the stand-in transcode command
while the video processor makes no transcodes of its own.
"""

import json
import os

from _common import *  # noqa: F403
from _common import DOC_ROOT

ROOT_URLCONF = "media_site.urls"
INSTALLED_APPS = ["fileresponse"]
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": DOC_ROOT},
    }
}
FILERESPONSE = {
    "DERIVATIVES_ROOT": os.path.join(DOC_ROOT, "derivatives"),
    "DERIVATIVES_WORKERS": 1,
    # A 60 s 720p transcode takes longer than the default 60 s limit on a busy machine.
    "DERIVATIVES_TIMEOUT": 600,
    "DERIVATIVES_MAX_SOURCE_BYTES": 500 * 1024 * 1024,
    "DERIVATIVES_NEGATIVE_TTL": None,
    "DERIVATIVES_COMMANDS": json.loads(os.environ.get("BENCH_MEDIA_COMMANDS") or "{}"),
}
