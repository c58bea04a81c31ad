"""Settings: one defaults table, read once and again when Django says they changed.

Projects set a dict ``FILERESPONSE`` in their Django settings (and
``FILERESPONSE_MINIO`` for :class:`~fileresponse.storage.MinioStorage`);
keyword arguments of the classes override them. Unknown keys raise
:class:`~django.core.exceptions.ImproperlyConfigured` (and fail ``manage.py
check`` through :mod:`fileresponse.checks`). :func:`per_settings` keeps any
value built from settings until they change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .commands import command_table_problems
from .fastpaths import fast_path_headers_problems, fast_path_problems, fast_paths_checked
from .lazy import PerSettings, per_settings
from .minio import (
    DELIVERY_MODES,
    MINIO_DEFAULTS,
    MinioConfig,
    get_minio_config,
    minio_settings,
    validate_minio,
    validate_minio_types,
)
from .tables import (
    default_of,
    is_positive_number,
    settings_table,
    type_problem,
    types_of,
    unknown_keys,
)

__all__ = [
    "DEFAULTS",
    "DELIVERY_MODES",
    "DERIVATIVE_KINDS",
    "MINIO_DEFAULTS",
    "Config",
    "MinioConfig",
    "PerSettings",
    "get_config",
    "get_minio_config",
    "minio_settings",
    "per_settings",
    "settings_table",
    "validate",
    "validate_minio",
    "validate_minio_types",
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
    #: Idle threads kept per process for the sync code of Django's requests under
    #: :func:`fileresponse.asgi.get_asgi_application` (one thread per request, reused
    #: as under a threaded WSGI server); ``0``: a new thread per request, as Django does.
    REQUEST_THREADS: int = 32
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
    #: ``"process"`` (a process pool per server process), ``"thread"``, ``"celery"``
    #: (Celery workers, ``fileresponse[celery]``), ``"tasks"`` (Django's Tasks framework,
    #: ``fileresponse[tasks]`` on Django 5.2), or the dotted path of an executor class.
    DERIVATIVES_EXECUTOR: str = "process"
    #: With ``"celery"`` or ``"tasks"``: whether a miss waits for the worker (at most
    #: ``DERIVATIVES_TIMEOUT``, by Redis pub/sub at ``DERIVATIVES_REDIS_URL`` or by polling
    #: the store) or answers ``503`` with ``Retry-After`` at once (``False``).
    DERIVATIVES_REMOTE_WAIT: bool = True
    #: The queue of the derivative tasks (Celery's queue, a Tasks ``queue_name``);
    #: ``None``: the default one.
    DERIVATIVES_QUEUE: str | None = None
    #: The Celery app that sends the tasks, as a dotted path (``"proj.celery.app"``);
    #: ``None``: Celery's current app (the project's, once its ``celery.py`` is imported).
    DERIVATIVES_CELERY_APP: str | None = None
    #: Tries again of a worker's storage step after a transient error (0.2 s, 0.4 s...).
    DERIVATIVES_RETRIES: int = 3
    #: Worker processes (or threads) per server process; ``None``: CPUs, at most 4.
    DERIVATIVES_WORKERS: int | None = None
    #: Jobs waiting or running per server process before ``503`` (backpressure).
    DERIVATIVES_MAX_PENDING: int = 64
    #: Runs at a time per server process of the kinds named (``kind -> count``; one
    #: more is ``503``), pool and streamed runs alike; this mapping replaces the
    #: default one, and kinds it does not name are bounded by DERIVATIVES_MAX_PENDING.
    DERIVATIVES_MAX_RUNS: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({"video": 2, "audio": 4, "command": 4})
    )
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
    #: Longest video or audio source, in seconds (``422`` beyond, checked from the probe).
    DERIVATIVES_MAX_DURATION: int = 3600
    #: Most pages of a PDF source (``422`` beyond, checked before rendering).
    DERIVATIVES_MAX_PAGES: int = 2000
    #: Path of the ffmpeg binary; ``None``: the one of ``imageio-ffmpeg`` (``fileresponse[video]``).
    FFMPEG: str | None = None
    #: External commands of the ``command`` processor (``run=name`` specs), by name:
    #: ``{"argv": [...], "formats": {"png": "image/png"}, "timeout": 30, "stdin": False}``;
    #: ``argv`` may hold ``{input}``, ``{format}``, ``{width}``, ``{height}``, ``{quality}``.
    DERIVATIVES_COMMANDS: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    #: The built-in kinds of derivatives this site makes (of ``DERIVATIVE_KINDS``); ``None``:
    #: each one whose library is installed. A kind listed without its extra fails the
    #: checks (``fileresponse.E030``); one left out is refused with ``501``.
    DERIVATIVES_KINDS: tuple[str, ...] | None = None
    #: Whether a streamed derivative's command is killed once no client follows it
    #: (``False``: it runs on and is stored for the next request).
    DERIVATIVES_STREAM_ABANDON: bool = False
    #: Whether derivative responses say how they were obtained: ``Cache-Status`` (RFC
    #: 9211: a hit, a miss stored, collapsed, streaming) and ``Server-Timing`` (look-up
    #: and processing time), see :mod:`fileresponse.derivatives.diagnostics`.
    DERIVATIVES_DIAGNOSTIC_HEADERS: bool = True
    #: Where background transfers (QueuedStorage) and staged uploads run: ``"local"``
    #: (threads of this process), ``"celery"`` (through ``DERIVATIVES_CELERY_APP``) or
    #: ``"tasks"``; ``"auto"``: ``DERIVATIVES_EXECUTOR`` when it is one of those, else local.
    TRANSFERS_ENGINE: str = "auto"
    #: Attempts of a transfer (or upload) before it is ``failed``; the delay between two
    #: doubles from ``TRANSFERS_RETRY_DELAY`` seconds, up to an hour.
    TRANSFERS_MAX_ATTEMPTS: int = 5
    TRANSFERS_RETRY_DELAY: float = 10.0
    #: Seconds a worker holds a transfer; it renews the lease while it copies, and a
    #: transfer whose worker died may be claimed again once its lease expired.
    TRANSFERS_LEASE: float = 60.0
    #: Threads of the ``"local"`` engine, per process.
    TRANSFERS_LOCAL_THREADS: int = 2
    #: Alias in ``STORAGES`` where :mod:`fileresponse.uploads` stages uploads; ``None``: a
    #: ``FileSystemStorage`` at ``MEDIA_ROOT/.staging``.
    UPLOADS_STAGING_STORAGE: str | None = None
    #: URL prefixes the ASGI application answers itself, before Django's URL resolution,
    #: middleware and request signals (:mod:`fileresponse.fastpath`), each to a target:
    #: ``"static"`` (``STATIC_ROOT``, precompressed variants, immutable hashed names),
    #: ``"derivatives"`` (the signed URLs of ``fileresponse.derivatives.urls``),
    #: ``{"root": "/abs/dir"}`` or ``{"storage": "alias"}`` (public files, as ``views.serve``).
    #: E.g. ``{"/static/": "static", "/media/": {"root": MEDIA_ROOT}}``; empty: no fast path.
    FAST_PATHS: Mapping[str, str | Mapping[str, str]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    #: Headers every fast-path response carries, since no middleware adds them there
    #: (CORS, ``X-Content-Type-Options``...); a header the response has is kept.
    FAST_PATH_HEADERS: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: ``Cache-Control`` of static files whose names are not hashed by
    #: ``ManifestStaticFilesStorage`` (hashed ones are ``max-age=31536000, immutable``);
    #: ``None``: ``CACHE_CONTROL``.
    STATIC_CACHE_CONTROL: str | None = "max-age=60"


DEFAULTS: Mapping[str, Any] = {item.name: default_of(item) for item in fields(Config)}


_TYPES = types_of(Config)

#: The built-in kinds of derivatives (``Processor.kind``), as ``DERIVATIVES_KINDS`` names them.
DERIVATIVE_KINDS: tuple[str, ...] = ("image", "pdf", "video", "audio", "command")


#: RFC 9110 section 5.6.2; a charset name is a token (section 8.3.2).
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

_QUEUE = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")

_DERIVATIVE_CHOICES: Mapping[str, tuple[str, ...]] = {
    "DERIVATIVES_SERVE": ("stream", "redirect", "accel"),
    "DERIVATIVES_LOCK": ("auto", "local", "storage", "redis"),
    "DERIVATIVES_ENGINE": ("pillow", "vips"),
    "TRANSFERS_ENGINE": ("auto", "local", "celery", "tasks"),
}


def validate(values: Mapping[str, Any]) -> list[str]:
    """Problems with a ``FILERESPONSE`` dict, as sentences (empty when fine)."""
    problems = unknown_keys(values, DEFAULTS)
    for key, value in values.items():
        expected = _TYPES.get(key)
        if expected is None:
            continue
        if key == "DOCUMENT_ROOT" and hasattr(value, "__fspath__"):
            continue
        if (wrong_type := type_problem(key, value, expected)) is not None:
            problems.append(wrong_type)
        elif key == "DERIVATIVES_COMMANDS":
            problems.extend(command_table_problems(value))
        elif key == "DERIVATIVES_MAX_RUNS":
            problems.extend(_max_runs_problems(value))
        elif key == "FAST_PATHS":
            problems.extend(fast_path_problems(value))
        elif key == "FAST_PATH_HEADERS":
            problems.extend(fast_path_headers_problems(value))
        elif key in ("TRANSFERS_RETRY_DELAY", "TRANSFERS_LEASE") and not is_positive_number(value):
            problems.append(f"{key} must be a positive number of seconds, not {value!r}")
        elif (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value
            < (0 if key in ("RETRY_AFTER", "DERIVATIVES_RETRIES", "REQUEST_THREADS") else 1)
        ):
            problems.append(f"{key} must be positive, not {value}")
        elif (
            key == "DERIVATIVES_SOURCE_STORAGES"
            and isinstance(value, tuple | list)
            and not all(isinstance(alias, str) for alias in value)
        ):
            problems.append(f"{key} must hold storage aliases (str)")
        elif (
            key == "DERIVATIVES_KINDS"
            and isinstance(value, tuple | list)
            and not all(isinstance(kind, str) and kind in DERIVATIVE_KINDS for kind in value)
        ):
            kinds = ", ".join(repr(kind) for kind in DERIVATIVE_KINDS)
            problems.append(f"{key} may hold {kinds} only, not {list(value)!r}")
        elif (
            key == "DERIVATIVES_DENSITIES"
            and isinstance(value, tuple | list)
            and not (value and all(is_positive_number(density) for density in value))
        ):
            problems.append(f"{key} must hold positive numbers")
        elif key == "DERIVATIVES_QUEUE" and value is not None and not _QUEUE.match(value):
            problems.append(f"{key} must be a queue name (1..100 of A-Z, a-z, 0-9, . _ : -)")
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


#: A kind of processor (``Processor.kind``): ``image``, ``video``, a site's own.
_KIND = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def _max_runs_problems(table: Mapping[object, object]) -> list[str]:
    problems = []
    for kind, count in table.items():
        where = f"DERIVATIVES_MAX_RUNS[{kind!r}]"
        if not isinstance(kind, str) or not _KIND.match(kind):
            problems.append(f"{where}: a kind is 1..40 of a-z, 0-9, _ and -, from a letter")
        elif not isinstance(count, int) or isinstance(count, bool) or count < 1:
            problems.append(f"{where} must be a positive int, not {count!r}")
    return problems


def get_config(**overrides: Any) -> Config:
    """The settings in force: defaults, then ``settings.FILERESPONSE``, then ``overrides``.

    ``settings.FILERESPONSE`` is read and validated once (again when it
    changes); so is each set of overrides of plain values (a response's
    ``cache_control``, ``chunk_size``...: the result is kept), and bad
    overrides fail on every call. Overrides that are ``None`` are left out,
    so callers can pass their keyword arguments through unchanged.
    """
    configured = _configured()
    given = {key: value for key, value in overrides.items() if value is not None}
    if not given:
        return configured
    # The type too: True == 1, but True is no CHUNK_SIZE.
    key = tuple(sorted((name, type(value), value) for name, value in given.items()))
    try:
        kept = _overridden().get(key)
    except TypeError:  # an unhashable value: not kept
        return replace(configured, **_checked(given))
    if kept is None:
        kept = replace(configured, **_checked(given))
        table = _overridden()
        if len(table) >= _MAX_OVERRIDDEN:
            table.clear()
        table[key] = kept
    return kept


#: Sets of overrides kept by get_config (a few in practice: the responses' options).
_MAX_OVERRIDDEN = 256


@per_settings("FILERESPONSE")
def _configured() -> Config:
    """``settings.FILERESPONSE`` over the defaults, validated."""
    return Config(**_checked(settings_table("FILERESPONSE")))


@per_settings("FILERESPONSE")
def _overridden() -> dict[tuple[tuple[str, type, Any], ...], Config]:
    """The configs of get_config's overrides, by overrides, until the settings change."""
    return {}


def _checked(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` validated (or ImproperlyConfigured), lists made tuples, paths made text."""
    problems = validate(values)
    if problems:
        raise ImproperlyConfigured("FILERESPONSE: " + "; ".join(problems))
    checked = dict(values)
    for key, value in values.items():
        if tuple in _TYPES[key] and value is not None:
            checked[key] = tuple(value)
    if "DERIVATIVES_MAX_RUNS" in checked:
        checked["DERIVATIVES_MAX_RUNS"] = MappingProxyType(dict(checked["DERIVATIVES_MAX_RUNS"]))
    if "FAST_PATHS" in checked:
        checked["FAST_PATHS"] = fast_paths_checked(checked["FAST_PATHS"])
    if "FAST_PATH_HEADERS" in checked:
        checked["FAST_PATH_HEADERS"] = MappingProxyType(dict(checked["FAST_PATH_HEADERS"]))
    if checked.get("DOCUMENT_ROOT") is not None:
        checked["DOCUMENT_ROOT"] = str(checked["DOCUMENT_ROOT"])
    return checked
