"""Typed configuration for the example project.

Values come from ``settings.ini`` at the repository root (section ``[fileresponse]``);
an environment variable with the same name as a key wins over the file. Set
``FILERESPONSE_SETTINGS_FILE`` to read another file. Relative paths are taken from the
repository root.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS_FILE_VARIABLE = "FILERESPONSE_SETTINGS_FILE"
SECTION = "fileresponse"
STORAGE_CHOICES = ("filesystem", "minio", "queued")
EXECUTOR_CHOICES = ("process", "thread", "celery")

_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class MinioConfig:
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    secure: bool


@dataclass(frozen=True)
class ExampleConfig:
    secret_key: str
    debug: bool
    allowed_hosts: tuple[str, ...]
    media_root: Path
    storage: str
    minio: MinioConfig
    database: Path
    cache_control: str | None
    chunk_size: int
    derivatives_executor: str
    #: The Celery broker (and the Redis of the derivative notifications); ``None``: unset.
    celery_broker_url: str | None
    background_uploads: bool


class SettingsReader:
    """Looks a key up in the environment first, then in one section of an ini file."""

    def __init__(self, path: Path, environ: Mapping[str, str]) -> None:
        self.file = path
        self.environ = environ
        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep keys' case
        if path.is_file():
            parser.read(path, encoding="utf-8")
        self.section: Mapping[str, str] = parser[SECTION] if parser.has_section(SECTION) else {}

    def _lookup(self, key: str, default: str | None) -> tuple[str, str]:
        if key in self.environ:
            return self.environ[key], f"environment variable {key}"
        if key in self.section:
            return self.section[key], f"{key} in [{SECTION}] of {self.file}"
        if default is not None:
            return default, f"default of {key}"
        raise ImproperlyConfigured(
            f"{key} is not set: add it to [{SECTION}] in {self.file} or set the environment "
            f"variable {key}."
        )

    def text(self, key: str, default: str | None = None) -> str:
        return self._lookup(key, default)[0].strip()

    def optional_text(self, key: str) -> str | None:
        return self.text(key, default="") or None

    def boolean(self, key: str, default: bool | None = None) -> bool:
        fallback = None if default is None else str(default)
        raw, origin = self._lookup(key, fallback)
        word = raw.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise ImproperlyConfigured(f"{origin} must be true or false, not {raw!r}.")

    def integer(self, key: str, default: int | None = None) -> int:
        fallback = None if default is None else str(default)
        raw, origin = self._lookup(key, fallback)
        try:
            return int(raw.strip())
        except ValueError:
            raise ImproperlyConfigured(f"{origin} must be an integer, not {raw!r}.") from None

    def comma_list(self, key: str, default: str | None = None) -> tuple[str, ...]:
        return tuple(item.strip() for item in self.text(key, default).split(",") if item.strip())

    def path(self, key: str, default: str | None = None) -> Path:
        return (REPO_ROOT / self.text(key, default)).resolve()

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        raw, origin = self._lookup(key, default)
        value = raw.strip().lower()
        if value not in choices:
            raise ImproperlyConfigured(
                f"{origin} is {raw!r}; it must be one of: {', '.join(choices)}."
            )
        return value


def settings_file(environ: Mapping[str, str]) -> Path:
    configured = environ.get(SETTINGS_FILE_VARIABLE)
    return Path(configured) if configured else REPO_ROOT / "settings.ini"


def load_config(environ: Mapping[str, str] | None = None) -> ExampleConfig:
    environ = os.environ if environ is None else environ
    reader = SettingsReader(settings_file(environ), environ)
    return ExampleConfig(
        secret_key=reader.text("SECRET_KEY"),
        debug=reader.boolean("DEBUG", default=False),
        allowed_hosts=reader.comma_list("ALLOWED_HOSTS", default="127.0.0.1,localhost"),
        media_root=reader.path("MEDIA_ROOT", default="example/media"),
        storage=reader.choice("STORAGE", STORAGE_CHOICES, default="filesystem"),
        minio=MinioConfig(
            endpoint=reader.text("MINIO_ENDPOINT", default="127.0.0.1:9000"),
            access_key=reader.text("MINIO_ACCESS_KEY", default=""),
            secret_key=reader.text("MINIO_SECRET_KEY", default=""),
            bucket=reader.text("MINIO_BUCKET", default="fileresponse"),
            secure=reader.boolean("MINIO_SECURE", default=False),
        ),
        database=reader.path("DATABASE", default="example/db.sqlite3"),
        cache_control=reader.optional_text("CACHE_CONTROL"),
        chunk_size=reader.integer("CHUNK_SIZE", default=262144),
        derivatives_executor=reader.choice(
            "DERIVATIVES_EXECUTOR", EXECUTOR_CHOICES, default="process"
        ),
        celery_broker_url=reader.optional_text("CELERY_BROKER_URL"),
        background_uploads=reader.boolean("BACKGROUND_UPLOADS", default=True),
    )


def storages_for(config: ExampleConfig) -> dict[str, dict[str, Any]]:
    """The ``STORAGES`` setting for the configured backend: the one place to wire a new one."""
    staticfiles = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    local = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(config.media_root), "base_url": "/files/"},
    }
    if config.storage == "filesystem":
        return {"default": local, "staticfiles": staticfiles}
    if not config.minio.bucket:
        raise ImproperlyConfigured(
            f"MINIO_BUCKET must name a bucket when STORAGE={config.storage}."
        )
    minio = {
        "BACKEND": "fileresponse.storage.MinioStorage",
        "OPTIONS": {
            "endpoint": config.minio.endpoint,
            "access_key": config.minio.access_key,
            "secret_key": config.minio.secret_key,
            "bucket": config.minio.bucket,
            "secure": config.minio.secure,
        },
    }
    if config.storage == "minio":
        return {"default": minio, "staticfiles": staticfiles}
    if config.storage == "queued":
        # Saved in MEDIA_ROOT at once, moved to the bucket in the background (TRANSFERS_ENGINE:
        # Celery or Tasks workers with that executor, else threads of the web process).
        return {
            "default": {
                "BACKEND": "fileresponse.storage.QueuedStorage",
                "OPTIONS": {"local": "local", "remote": "remote", "delete_local": True},
            },
            "local": local,
            "remote": minio,
            "staticfiles": staticfiles,
        }
    raise ImproperlyConfigured(f"STORAGE={config.storage!r} has no storage wiring.")


def executor_settings(config: ExampleConfig) -> dict[str, Any]:
    """The ``FILERESPONSE`` keys of ``DERIVATIVES_EXECUTOR`` (and the Celery app it needs)."""
    executor = config.derivatives_executor
    if executor == "celery":
        if not config.celery_broker_url:
            raise ImproperlyConfigured(
                "DERIVATIVES_EXECUTOR=celery needs CELERY_BROKER_URL (make demo-celery sets it)."
            )
        wait_by = {}
        if config.celery_broker_url.startswith(("redis://", "rediss://")):
            # The worker announces each derivative there: the web process awaits it.
            wait_by = {"DERIVATIVES_REDIS_URL": config.celery_broker_url}
        return {
            "DERIVATIVES_EXECUTOR": "celery",
            "DERIVATIVES_CELERY_APP": "example.celery.app",
            **wait_by,
        }
    return {"DERIVATIVES_EXECUTOR": executor}
