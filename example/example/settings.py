"""Django settings for the example project; the values live in settings.ini (see config.py)."""

from pathlib import Path

from example.config import load_config, storages_for

_config = load_config()

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = _config.secret_key
DEBUG = _config.debug
ALLOWED_HOSTS = list(_config.allowed_hosts)

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "fileresponse",
    "gallery",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "example.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

WSGI_APPLICATION = "example.wsgi.application"
ASGI_APPLICATION = "example.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _config.database,
    }
}

MEDIA_ROOT = _config.media_root
MEDIA_URL = "/files/"
STORAGES = storages_for(_config)

FILERESPONSE = {
    "CHUNK_SIZE": _config.chunk_size,
    "CACHE_CONTROL": _config.cache_control,
    # Thumbnails of the gallery, next to MEDIA_ROOT (whose files the index page lists).
    "DERIVATIVES_ROOT": str(_config.media_root.parent / "derivatives"),
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
