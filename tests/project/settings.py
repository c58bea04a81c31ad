"""Django settings for the test suite (``DJANGO_SETTINGS_MODULE=tests.project.settings``)."""

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
