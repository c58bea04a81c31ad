"""Django settings for the example project; the values live in settings.ini (see config.py)."""

from pathlib import Path

from example.config import executor_settings, load_config, storages_for

_config = load_config()

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = _config.secret_key
DEBUG = _config.debug
ALLOWED_HOSTS = list(_config.allowed_hosts)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "fileresponse",
    "gallery",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # X-Delivery: how a file response goes out (the detail page's "how was this served").
    "example.delivery.DeliveryHeaderMiddleware",
]

ROOT_URLCONF = "example.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

WSGI_APPLICATION = "example.wsgi.application"
ASGI_APPLICATION = "example.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _config.database,
        # Web and worker processes write the same file (uploads, transfers).
        "OPTIONS": {"timeout": 20},
    }
}

MEDIA_ROOT = _config.media_root
MEDIA_URL = "/files/"
STORAGES = storages_for(_config)
STATIC_URL = "/static/"
# Filled by `manage.py collectstatic` (make demo), served by fileresponse.staticfiles.
STATIC_ROOT = _config.media_root.parent / "static"

#: Uploads saved by fileresponse.uploads (staged, attached by a job), or in the request.
BACKGROUND_UPLOADS = _config.background_uploads
# Uploads of the media library: larger than Django's 2.5 MB go to a temporary file.
MAX_UPLOAD_BYTES = 200 * 1024 * 1024

FILERESPONSE = {
    "CHUNK_SIZE": _config.chunk_size,
    "CACHE_CONTROL": _config.cache_control,
    # Thumbnails, posters, waveforms and transcodes, next to MEDIA_ROOT.
    "DERIVATIVES_ROOT": str(_config.media_root.parent / "derivatives"),
    "DERIVATIVES_MAX_SOURCE_BYTES": MAX_UPLOAD_BYTES,
    **executor_settings(_config),
}

CELERY_BROKER_URL = _config.celery_broker_url or "memory://"
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"short": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "short"}},
    "loggers": {
        # One line per derivative made, per transfer and per upload attached.
        "fileresponse": {"handlers": ["stderr"], "level": "INFO"},
        "example": {"handlers": ["stderr"], "level": "INFO"},
        "gallery": {"handlers": ["stderr"], "level": "INFO"},
        "django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
