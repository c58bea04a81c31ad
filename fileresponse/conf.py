"""Settings: one defaults table, read when objects are built.

Projects set a dict ``FILERESPONSE`` in their Django settings (and
``FILERESPONSE_MINIO`` for :class:`~fileresponse.storage.MinioStorage`);
keyword arguments of the classes override them. Unknown keys raise
:class:`~django.core.exceptions.ImproperlyConfigured` (and fail ``manage.py
check`` through :mod:`fileresponse.checks`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "DEFAULTS",
    "MINIO_DEFAULTS",
    "Config",
    "MinioConfig",
    "get_config",
    "get_minio_config",
]


@dataclass(frozen=True, slots=True)
class Config:
    """The effective ``FILERESPONSE`` settings."""

    #: Bytes read and sent at a time; memory per response is about two chunks.
    #: 64 KiB fits a socket buffer, so a send rarely waits, and keeps the turns
    #: of concurrent downloads short (small requests stay fast among them).
    CHUNK_SIZE: int = 64 * 1024
    #: ``Cache-Control`` for file responses, or ``None`` for no header.
    CACHE_CONTROL: str | None = None
    #: ``charset`` added to text types (``text/*``, JavaScript, JSON, XML, SVG) that have
    #: none, so that browsers decode them right; ``None`` or ``""`` adds none.
    TEXT_CHARSET: str | None = "utf-8"
    #: Ranges beyond this count in one ``Range`` header make it ignored (``200``).
    MAX_RANGES: int = 16
    #: Default root of :func:`fileresponse.views.serve`; ``None`` means ``MEDIA_ROOT``.
    DOCUMENT_ROOT: str | None = None
    #: Threads reading files for async responses, per process.
    IO_THREADS: int = 8
    #: ``Retry-After`` seconds sent with a ``503`` when a storage is unavailable.
    RETRY_AFTER: int = 5
    #: Aliases of Django's ``STORAGES`` that derivative URLs may name as sources.
    DERIVATIVES_SOURCE_STORAGES: tuple[str, ...] = ("default",)
    #: Prefix of derivative URLs (e.g. a CDN), or ``None`` to reverse ``fileresponse:derivative``.
    DERIVATIVES_BASE_URL: str | None = None
    #: Pixel densities of the ``srcset`` written by ``{% fileprocessor %}``.
    DERIVATIVES_DENSITIES: tuple[float, ...] = (1, 2)
    #: Where derivatives are stored (a directory), when DERIVATIVES_STORAGE is None;
    #: ``None`` means ``MEDIA_ROOT/derivatives``.
    DERIVATIVES_ROOT: str | None = None
    #: Alias in Django's ``STORAGES`` of the derivative storage (e.g. MinIO), or ``None``
    #: for a ``FileSystemStorage`` at ``DERIVATIVES_ROOT``.
    DERIVATIVES_STORAGE: str | None = None
    #: How a stored derivative is sent: ``"stream"`` (an AsyncFileResponse), ``"redirect"``
    #: (to the storage's URL, presigned for object storages) or ``"accel"`` (nginx
    #: ``X-Accel-Redirect`` to ``DERIVATIVES_ACCEL_PREFIX`` + name).
    DERIVATIVES_SERVE: str = "stream"
    #: The nginx ``internal`` location aliased to the derivative root (``"accel"``).
    DERIVATIVES_ACCEL_PREFIX: str = "/_derivatives/"
    #: ``Cache-Control`` of derivatives whose URL carries the source's current version.
    DERIVATIVES_CACHE_CONTROL: str = "max-age=31536000, immutable"
    #: ``Cache-Control`` of derivatives whose URL has no version (or an outdated one).
    DERIVATIVES_CACHE_CONTROL_UNVERSIONED: str = "max-age=3600"
    #: Largest output width and height a spec may ask for (``400`` beyond).
    DERIVATIVES_MAX_WIDTH: int = 4096
    DERIVATIVES_MAX_HEIGHT: int = 4096
    #: Largest source, in pixels (read from the header, before decoding) and in bytes.
    DERIVATIVES_MAX_SOURCE_PIXELS: int = 50_000_000
    DERIVATIVES_MAX_SOURCE_BYTES: int = 50 * 1024 * 1024
    #: Output formats ``auto`` may pick, best first, when the ``Accept`` header allows.
    DERIVATIVES_AUTO_FORMATS: tuple[str, ...] = ("avif", "webp")
    #: The image engine: ``"pillow"`` (``fileresponse[images]``) or ``"vips"`` (libvips,
    #: ``fileresponse[vips]``). Part of every cache key: engines never share derivatives.
    DERIVATIVES_ENGINE: str = "pillow"
    #: ``"process"`` (a process pool per server process), ``"thread"``, or a dotted path.
    DERIVATIVES_EXECUTOR: str = "process"
    #: Worker processes (or threads) per server process; ``None``: CPUs, at most 4.
    DERIVATIVES_WORKERS: int | None = None
    #: Jobs waiting or running per server process before ``503`` (backpressure).
    DERIVATIVES_MAX_PENDING: int = 64
    #: Seconds one processing run may take (``503`` beyond, workers ended).
    DERIVATIVES_TIMEOUT: int = 60
    #: Seconds a request waits for another process's run of the same derivative.
    DERIVATIVES_LOCK_TIMEOUT: int = 120
    #: Single-flight across machines: ``"auto"``, ``"local"`` (this machine only: lock
    #: files), ``"storage"`` (plus a lease object in the derivative storage) or
    #: ``"redis"`` (plus a Redis lock at ``DERIVATIVES_REDIS_URL``).
    DERIVATIVES_LOCK: str = "auto"
    #: Directory of the lock files; ``None``: ``DERIVATIVES_ROOT/.locks`` or a temp dir.
    DERIVATIVES_LOCK_DIR: str | None = None
    #: Redis URL for ``DERIVATIVES_LOCK = "redis"`` (``auto`` picks Redis when it is set).
    DERIVATIVES_REDIS_URL: str | None = None
    #: Seconds a processing failure is remembered (per process), or ``None`` for never.
    DERIVATIVES_NEGATIVE_TTL: int | None = 30


DEFAULTS: Mapping[str, Any] = {field.name: field.default for field in fields(Config)}

_TYPES: Mapping[str, tuple[type, ...]] = {
    "CHUNK_SIZE": (int,),
    "CACHE_CONTROL": (str, type(None)),
    "TEXT_CHARSET": (str, type(None)),
    "MAX_RANGES": (int,),
    "DOCUMENT_ROOT": (str, type(None)),
    "IO_THREADS": (int,),
    "RETRY_AFTER": (int,),
    "DERIVATIVES_SOURCE_STORAGES": (tuple, list),
    "DERIVATIVES_BASE_URL": (str, type(None)),
    "DERIVATIVES_DENSITIES": (tuple, list),
    "DERIVATIVES_ROOT": (str, type(None)),
    "DERIVATIVES_STORAGE": (str, type(None)),
    "DERIVATIVES_SERVE": (str,),
    "DERIVATIVES_ACCEL_PREFIX": (str,),
    "DERIVATIVES_CACHE_CONTROL": (str,),
    "DERIVATIVES_CACHE_CONTROL_UNVERSIONED": (str,),
    "DERIVATIVES_MAX_WIDTH": (int,),
    "DERIVATIVES_MAX_HEIGHT": (int,),
    "DERIVATIVES_MAX_SOURCE_PIXELS": (int,),
    "DERIVATIVES_MAX_SOURCE_BYTES": (int,),
    "DERIVATIVES_AUTO_FORMATS": (tuple, list),
    "DERIVATIVES_ENGINE": (str,),
    "DERIVATIVES_EXECUTOR": (str,),
    "DERIVATIVES_WORKERS": (int, type(None)),
    "DERIVATIVES_MAX_PENDING": (int,),
    "DERIVATIVES_TIMEOUT": (int,),
    "DERIVATIVES_LOCK_TIMEOUT": (int,),
    "DERIVATIVES_LOCK": (str,),
    "DERIVATIVES_LOCK_DIR": (str, type(None)),
    "DERIVATIVES_REDIS_URL": (str, type(None)),
    "DERIVATIVES_NEGATIVE_TTL": (int, type(None)),
}


def _unknown_keys(values: Mapping[str, Any], known: Mapping[str, Any]) -> list[str]:
    return [
        f"unknown key {key!r} (known: {', '.join(sorted(known))})"
        for key in values
        if key not in known
    ]


def _type_problem(key: str, value: object, expected: tuple[type, ...]) -> str | None:
    """Why ``value`` is not of ``expected``, or ``None``; a bool is no int unless expected."""
    if isinstance(value, expected) and not (isinstance(value, bool) and bool not in expected):
        return None
    names = " or ".join("None" if kind is type(None) else kind.__name__ for kind in expected)
    return f"{key} must be {names}, not {type(value).__name__}"


def validate(values: Mapping[str, Any]) -> list[str]:
    """Problems with a ``FILERESPONSE`` dict, as sentences (empty when fine)."""
    problems = _unknown_keys(values, DEFAULTS)
    for key, value in values.items():
        expected = _TYPES.get(key)
        if expected is None:
            continue
        if key == "DOCUMENT_ROOT" and hasattr(value, "__fspath__"):
            continue
        if (wrong_type := _type_problem(key, value, expected)) is not None:
            problems.append(wrong_type)
        elif isinstance(value, int) and value < (0 if key == "RETRY_AFTER" else 1):
            problems.append(f"{key} must be positive, not {value}")
        elif (
            key == "DERIVATIVES_SOURCE_STORAGES"
            and isinstance(value, tuple | list)
            and not all(isinstance(alias, str) for alias in value)
        ):
            problems.append(f"{key} must hold storage aliases (str)")
        elif (
            key == "DERIVATIVES_DENSITIES"
            and isinstance(value, tuple | list)
            and not (value and all(_is_positive_number(density) for density in value))
        ):
            problems.append(f"{key} must hold positive numbers")
        elif key == "TEXT_CHARSET" and value and not _TOKEN.match(value):
            problems.append(f"{key} must be a charset name like 'utf-8', not {value!r}")
        elif key in _DERIVATIVE_CHOICES and value not in _DERIVATIVE_CHOICES[key]:
            choices = ", ".join(repr(choice) for choice in _DERIVATIVE_CHOICES[key])
            problems.append(f"{key} must be one of {choices}, not {value!r}")
        elif (
            key == "DERIVATIVES_AUTO_FORMATS"
            and isinstance(value, tuple | list)
            and not set(value) <= {"avif", "webp", "png"}
        ):
            problems.append(f"{key} may hold 'avif', 'webp' and 'png' only")
    return problems


#: RFC 9110 section 5.6.2; a charset name is a token (section 8.3.2).
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

_DERIVATIVE_CHOICES: Mapping[str, tuple[str, ...]] = {
    "DERIVATIVES_SERVE": ("stream", "redirect", "accel"),
    "DERIVATIVES_LOCK": ("auto", "local", "storage", "redis"),
    "DERIVATIVES_ENGINE": ("pillow", "vips"),
}


def _is_positive_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def get_config(**overrides: Any) -> Config:
    """The settings in force: defaults, then ``settings.FILERESPONSE``, then ``overrides``.

    Overrides that are ``None`` are left out, so callers can pass their
    keyword arguments through unchanged.
    """
    from django.conf import settings

    configured = getattr(settings, "FILERESPONSE", {}) or {}
    if not isinstance(configured, Mapping):
        raise ImproperlyConfigured("FILERESPONSE must be a dict")
    values = {**configured, **{key: value for key, value in overrides.items() if value is not None}}
    problems = validate(values)
    if problems:
        raise ImproperlyConfigured("FILERESPONSE: " + "; ".join(problems))
    for key in ("DERIVATIVES_SOURCE_STORAGES", "DERIVATIVES_DENSITIES"):
        if key in values:
            values[key] = tuple(values[key])
    if "DERIVATIVES_AUTO_FORMATS" in values:
        values["DERIVATIVES_AUTO_FORMATS"] = tuple(values["DERIVATIVES_AUTO_FORMATS"])
    if values.get("DOCUMENT_ROOT") is not None:
        values["DOCUMENT_ROOT"] = str(values["DOCUMENT_ROOT"])
    return Config(**values)


# ---------------------------------------------------------------- MinIO / S3


#: How a storage view delivers an object's bytes.
DELIVERY_MODES = ("stream", "presigned", "public")

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class MinioConfig:
    """The effective settings of one :class:`~fileresponse.storage.MinioStorage`.

    Read from ``settings.FILERESPONSE_MINIO``, then the ``OPTIONS`` of its
    entry in ``STORAGES`` (or keyword arguments), which win.
    """

    #: ``host:port`` of the S3 API, without a scheme (``SECURE`` picks https).
    ENDPOINT: str = ""
    ACCESS_KEY: str = ""
    SECRET_KEY: str = field(default="", repr=False)
    BUCKET: str = ""
    #: https (``True``) or http.
    SECURE: bool = True
    #: ``None`` asks the server once per client (one ``GetBucketLocation``).
    REGION: str | None = None
    #: Key prefix under which the storage keeps its files (``"media"`` -> ``media/<name>``).
    PREFIX: str = ""
    #: ``stream`` through Django, or a ``302`` to a ``presigned`` or ``public`` URL.
    DELIVERY: str = "stream"
    #: Lifetime of presigned URLs, in seconds (at most 7 days).
    PRESIGNED_TTL: int = 3600
    #: Base URL of public objects (a CDN, or a public-read bucket); ``None``: the endpoint's.
    PUBLIC_URL: str | None = None
    #: What ``url()`` returns in ``stream`` delivery (the URL of the serving view), or ``None``.
    BASE_URL: str | None = None
    #: Seconds to wait for a connection to the storage.
    CONNECT_TIMEOUT: float = 5.0
    #: Seconds to wait for each read from the storage.
    READ_TIMEOUT: float = 30.0
    #: Connections kept to the storage per process (and per event loop).
    MAX_CONNECTIONS: int = 100

    @property
    def endpoint_url(self) -> str:
        return f"{'https' if self.SECURE else 'http'}://{self.ENDPOINT}"


MINIO_DEFAULTS: Mapping[str, Any] = {item.name: item.default for item in fields(MinioConfig)}

_MINIO_TYPES: Mapping[str, tuple[type, ...]] = {
    "ENDPOINT": (str,),
    "ACCESS_KEY": (str,),
    "SECRET_KEY": (str,),
    "BUCKET": (str,),
    "SECURE": (bool,),
    "REGION": (str, type(None)),
    "PREFIX": (str,),
    "DELIVERY": (str,),
    "PRESIGNED_TTL": (int,),
    "PUBLIC_URL": (str, type(None)),
    "BASE_URL": (str, type(None)),
    "CONNECT_TIMEOUT": (int, float),
    "READ_TIMEOUT": (int, float),
    "MAX_CONNECTIONS": (int,),
}


def validate_minio_types(values: Mapping[str, Any]) -> list[str]:
    """Unknown keys and values of the wrong type in MinIO settings, as sentences."""
    problems = _unknown_keys(values, MINIO_DEFAULTS)
    for key, value in values.items():
        expected = _MINIO_TYPES.get(key)
        if expected is not None and (wrong_type := _type_problem(key, value, expected)):
            problems.append(wrong_type)
    return problems


def validate_minio(values: Mapping[str, Any]) -> list[str]:
    """Problems with complete MinIO settings (keys as in :class:`MinioConfig`), as sentences."""
    problems = validate_minio_types(values)
    if problems:
        return problems
    merged = {**MINIO_DEFAULTS, **values}
    endpoint = merged["ENDPOINT"]
    if not endpoint:
        problems.append("ENDPOINT is required (host:port of the S3 API)")
    elif "://" in endpoint or "/" in endpoint:
        problems.append(f"ENDPOINT must be host:port without scheme or path, not {endpoint!r}")
    if not _BUCKET_NAME.match(merged["BUCKET"]) or ".." in merged["BUCKET"]:
        problems.append(f"BUCKET must be a valid S3 bucket name, not {merged['BUCKET']!r}")
    if bool(merged["ACCESS_KEY"]) != bool(merged["SECRET_KEY"]):
        problems.append("ACCESS_KEY and SECRET_KEY go together")
    prefix = merged["PREFIX"].strip("/")
    if prefix and any(part in ("", ".", "..") or "\\" in part for part in prefix.split("/")):
        problems.append(f"PREFIX must be a key prefix like 'a/b', not {merged['PREFIX']!r}")
    if merged["DELIVERY"] not in DELIVERY_MODES:
        problems.append(
            f"DELIVERY must be one of {', '.join(DELIVERY_MODES)}, not {merged['DELIVERY']!r}"
        )
    if not 1 <= merged["PRESIGNED_TTL"] <= 7 * 24 * 3600:
        problems.append("PRESIGNED_TTL must be between 1 second and 7 days")
    for key in ("PUBLIC_URL", "BASE_URL"):
        url = merged[key]
        if url is not None and not (url.startswith(("http://", "https://", "/"))):
            problems.append(f"{key} must be an http(s) URL or start with '/', not {url!r}")
    for key in ("CONNECT_TIMEOUT", "READ_TIMEOUT", "MAX_CONNECTIONS"):
        if merged[key] <= 0:
            problems.append(f"{key} must be positive, not {merged[key]}")
    return problems


def minio_settings() -> Mapping[str, Any]:
    """``settings.FILERESPONSE_MINIO`` (empty when unset)."""
    from django.conf import settings

    configured = getattr(settings, "FILERESPONSE_MINIO", {}) or {}
    if not isinstance(configured, Mapping):
        raise ImproperlyConfigured("FILERESPONSE_MINIO must be a dict")
    return configured


def get_minio_config(**overrides: Any) -> MinioConfig:
    """MinIO settings: defaults, then ``settings.FILERESPONSE_MINIO``, then ``overrides``.

    Override names are case-insensitive (``bucket=`` or ``BUCKET=``), so the
    ``OPTIONS`` of a ``STORAGES`` entry can use either; ``None`` values are
    left out.
    """
    values = {
        **minio_settings(),
        **{key.upper(): value for key, value in overrides.items() if value is not None},
    }
    problems = validate_minio(values)
    if problems:
        raise ImproperlyConfigured("MinIO storage: " + "; ".join(problems))
    values["PREFIX"] = values.get("PREFIX", "").strip("/")
    for key in ("CONNECT_TIMEOUT", "READ_TIMEOUT"):
        if key in values:
            values[key] = float(values[key])
    return MinioConfig(**values)
