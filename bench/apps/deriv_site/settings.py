"""Django site for bench/derivatives.py: plain files and derivatives of the same document root.

Derivatives are stored under ``BENCH_DOC_ROOT/derivatives`` (``BENCH_DERIVATIVES_DIR``
names another folder there) so that the very file a derivative URL serves can also be
requested as a plain file at ``/files/...``. ``deriv_site.fastpath_settings`` is the same
site with the ASGI fast path for its derivative URLs.
"""

import os

from _common import *  # noqa: F403
from _common import DOC_ROOT

ROOT_URLCONF = "deriv_site.urls"
INSTALLED_APPS = ["fileresponse"]
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": DOC_ROOT},
    }
}
FILERESPONSE = {
    "DERIVATIVES_ROOT": os.path.join(
        DOC_ROOT, os.environ.get("BENCH_DERIVATIVES_DIR", "derivatives")
    ),
    "DERIVATIVES_EXECUTOR": os.environ.get("BENCH_DERIVATIVES_EXECUTOR", "process"),
}
