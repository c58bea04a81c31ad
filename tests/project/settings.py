"""Django settings for the test suite (``DJANGO_SETTINGS_MODULE=tests.project.settings``)."""

import json
import os
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "fileresponse-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "fileresponse",
    # The Photo model of the background upload tests (tests/project/uploads.py).
    "tests.project",
]

MIDDLEWARE: list[str] = []

ROOT_URLCONF = "tests.project.urls"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": ":memory:",
    }
}

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {},
    }
]

MEDIA_ROOT = os.environ.get("FILERESPONSE_TEST_MEDIA_ROOT", str(TESTS_DIR / "media"))
MEDIA_URL = "/files/"

# Served by fileresponse.views.serve(storage=...) at /storage/<alias>/<path>.
STORAGES: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # A storage fileresponse does not recognise: served through the Storage API.
    "generic": {
        "BACKEND": "tests.project.storages.OpaqueStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    },
}

# MinIO storages when the S3 server of the tests is named (see tests/s3server.py).
_MINIO = "FILERESPONSE_TEST_MINIO_"
if os.environ.get(_MINIO + "ENDPOINT"):
    _minio_options = {
        "endpoint": os.environ[_MINIO + "ENDPOINT"],
        "access_key": os.environ.get(_MINIO + "ACCESS_KEY", ""),
        "secret_key": os.environ.get(_MINIO + "SECRET_KEY", ""),
        "bucket": os.environ.get(_MINIO + "BUCKET", "fileresponse-tests"),
        "secure": os.environ.get(_MINIO + "SECURE", "0").lower() in ("1", "true", "yes", "on"),
        "region": os.environ.get(_MINIO + "REGION", "us-east-1"),
        "prefix": "media",
        "connect_timeout": 2.0,
        "read_timeout": 3.0,
    }
    _minio_variants = {
        "minio": {},
        "minio-presigned": {"delivery": "presigned", "presigned_ttl": 120},
        "minio-public": {"delivery": "public"},
    }
    if os.environ.get(_MINIO + "PROXY_ENDPOINT"):
        # The same bucket through tests.s3server.CountingProxy, which records each request.
        _minio_variants["minio-counted"] = {"endpoint": os.environ[_MINIO + "PROXY_ENDPOINT"]}
    for _alias, _variant in _minio_variants.items():
        STORAGES[_alias] = {
            "BACKEND": "fileresponse.storage.MinioStorage",
            "OPTIONS": {**_minio_options, **_variant},
        }

# The queues of tests/queues.py: a database file that web and worker processes share,
# the Tasks database backend (django-tasks-db), the broker of tests/project/celery.py.
if os.environ.get("FILERESPONSE_TEST_DATABASE"):
    DATABASES["default"]["NAME"] = os.environ["FILERESPONSE_TEST_DATABASE"]
if os.environ.get("FILERESPONSE_TEST_TASKS") == "db":
    INSTALLED_APPS.append("django_tasks_db")
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
CELERY_BROKER_URL = os.environ.get("FILERESPONSE_TEST_CELERY_BROKER", "memory://")
# The task of transfers and staged uploads, beside the derivative task of tests/project/celery.py.
CELERY_IMPORTS = ["fileresponse.storage.queued.celery_tasks"]
# The QueuedStorage of tests/test_queued_live.py: its OPTIONS as JSON (local and remote entries).
if os.environ.get("FILERESPONSE_TEST_QUEUED"):
    STORAGES["queued"] = {
        "BACKEND": "fileresponse.storage.QueuedStorage",
        "OPTIONS": json.loads(os.environ["FILERESPONSE_TEST_QUEUED"]),
    }
CELERY_TASK_IGNORE_RESULT = True

USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Errors reach stderr even with DEBUG = False, so the live servers' logs show
# tracebacks (Django's default config sends them to mail_admins only).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django.request": {"handlers": ["stderr"], "level": "ERROR"},
        "fileresponse": {"handlers": ["stderr"], "level": "WARNING"},
    },
}
