"""Settings: one defaults table, read once and again when Django says they changed.

Projects set a dict ``FILERESPONSE`` in their Django settings (and
``FILERESPONSE_MINIO`` for :class:`~fileresponse.storage.MinioStorage`);
keyword arguments of the classes override them. Unknown keys raise
:class:`~django.core.exceptions.ImproperlyConfigured` (and fail ``manage.py
check`` through :mod:`fileresponse.checks`). :func:`per_settings` keeps any
value built from settings until they change.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType, UnionType
from typing import Any, Generic, TypeVar, Union, get_args, get_origin, get_type_hints

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

__all__ = [
    "DEFAULTS",
    "MINIO_DEFAULTS",
    "Config",
    "MinioConfig",
    "PerSettings",
    "get_config",
    "get_minio_config",
    "per_settings",
    "settings_table",
]

_Built = TypeVar("_Built")


class PerSettings(Generic[_Built]):
    """A value built on first use and kept until one of its Django settings changes.

    Call it for the value; ``peek()`` gives it only if it is built. ``reset()``
    forgets it (and calls ``close`` on the old value), and so does Django's
    ``setting_changed`` signal for one of ``names`` (sent by
    ``override_settings`` and pytest-django's ``settings``). The value is
    built once at a time, under a lock; a builder that raises is called
    again next time. Most uses are the decorator :func:`per_settings`.
    """

    def __init__(
        self,
        builder: Callable[[], _Built],
        names: Iterable[str] = (),
        *,
        close: Callable[[_Built], object] | None = None,
    ) -> None:
        self._builder = builder
        self._close = close
        self.names = frozenset(names)
        self._built: tuple[_Built] | None = None
        self._lock = threading.Lock()
        functools.update_wrapper(self, builder)
        if self.names:
            setting_changed.connect(self._setting_changed)

    def __call__(self) -> _Built:
        built = self._built
        if built is None:
            with self._lock:
                built = self._built
                if built is None:
                    built = self._built = (self._builder(),)
        return built[0]

    def peek(self) -> _Built | None:
        """The value if it is built, else ``None`` (builds nothing)."""
        built = self._built
        return None if built is None else built[0]

    def reset(self) -> None:
        with self._lock:
            built, self._built = self._built, None
        if built is not None and self._close is not None:
            self._close(built[0])

    def _setting_changed(self, *, setting: str, **kwargs: object) -> None:
        if setting in self.names:
            self.reset()


def per_settings(*names: str) -> Callable[[Callable[[], _Built]], PerSettings[_Built]]:
    """Decorate a builder: its value is made once, and again after one of ``names`` changed::

        @per_settings("FILERESPONSE", "MEDIA_ROOT")
        def get_store() -> DerivativeStore: ...

        get_store()        # built now, then the same object
        get_store.reset()  # built again on the next call

    Without names, the value lasts as long as the process (or until ``reset()``).
    A value that holds resources: ``PerSettings(builder, names, close=...)``.
    """

    def decorate(builder: Callable[[], _Built]) -> PerSettings[_Built]:
        return PerSettings(builder, names)

    return decorate


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


DEFAULTS: Mapping[str, Any] = {item.name: item.default for item in fields(Config)}


def _runtime_types(hint: object) -> tuple[type, ...]:
    """The ``isinstance`` check of a settings annotation.

    Unions are split; a ``tuple`` also accepts a list (settings files write
    lists) and a ``float`` an ``int``.
    """
    if get_origin(hint) in (Union, UnionType):
        return tuple(kind for member in get_args(hint) for kind in _runtime_types(member))
    origin = get_origin(hint) or hint
    if origin is tuple:
        return (tuple, list)
    if origin is float:
        return (int, float)
    if not isinstance(origin, type):
        raise TypeError(f"no runtime check for the settings annotation {hint!r}")
    return (origin,)


def _types_of(table: type) -> Mapping[str, tuple[type, ...]]:
    """The runtime types of each field of a settings dataclass, from its annotations."""
    hints = get_type_hints(table)
    return {item.name: _runtime_types(hints[item.name]) for item in fields(table)}


_TYPES = _types_of(Config)


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

    ``settings.FILERESPONSE`` is read and validated once (again when it
    changes); overrides are checked on each call. Overrides that are ``None``
    are left out, so callers can pass their keyword arguments through
    unchanged.
    """
    configured = _configured()
    given = {key: value for key, value in overrides.items() if value is not None}
    return replace(configured, **_checked(given)) if given else configured


@per_settings("FILERESPONSE")
def _configured() -> Config:
    """``settings.FILERESPONSE`` over the defaults, validated."""
    return Config(**_checked(settings_table("FILERESPONSE")))


def _checked(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` validated (or ImproperlyConfigured), lists made tuples, paths made text."""
    problems = validate(values)
    if problems:
        raise ImproperlyConfigured("FILERESPONSE: " + "; ".join(problems))
    checked = dict(values)
    for key, value in values.items():
        if tuple in _TYPES[key]:
            checked[key] = tuple(value)
    if checked.get("DOCUMENT_ROOT") is not None:
        checked["DOCUMENT_ROOT"] = str(checked["DOCUMENT_ROOT"])
    return checked


def settings_table(name: str) -> Mapping[str, Any]:
    """The dict ``settings.<name>``, empty when unset; ImproperlyConfigured when not a dict."""
    from django.conf import settings

    configured = getattr(settings, name, None) or {}
    if not isinstance(configured, Mapping):
        raise ImproperlyConfigured(f"{name} must be a dict")
    return configured


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

_MINIO_TYPES = _types_of(MinioConfig)


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


@per_settings("FILERESPONSE_MINIO")
def minio_settings() -> Mapping[str, Any]:
    """``settings.FILERESPONSE_MINIO`` (empty when unset), read once (again when it changes)."""
    return MappingProxyType(dict(settings_table("FILERESPONSE_MINIO")))


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
    for key, value in values.items():
        if float in _MINIO_TYPES[key]:
            values[key] = float(value)
    return MinioConfig(**values)
