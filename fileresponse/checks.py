"""System checks: misconfiguration fails ``manage.py check`` and start-up, not requests.

=====================  ==============================================================
``fileresponse.E001``  ``FILERESPONSE`` is not a dict
``fileresponse.E002``  ``FILERESPONSE`` has an unknown key or a bad value
``fileresponse.E010``  ``FILERESPONSE_MINIO`` is not valid
``fileresponse.E011``  a MinioStorage of ``STORAGES`` refuses the credentials
``fileresponse.W011``  a MinioStorage of ``STORAGES`` does not answer in time
``fileresponse.E012``  a MinioStorage's bucket does not exist
``fileresponse.E020``  an alias of ``DERIVATIVES_SOURCE_STORAGES`` is not in ``STORAGES``
``fileresponse.E021``  ``DERIVATIVES_STORAGE`` is not in ``STORAGES``
``fileresponse.E022``  the library of ``DERIVATIVES_ENGINE`` cannot be imported
                       (when derivatives are in use: a ``DERIVATIVES_*`` setting, or
                       the derivative URLs in the URLconf)
``fileresponse.E023``  ``DERIVATIVES_EXECUTOR`` is neither a known name nor an
                       importable executor class, or ``"celery"``/``"tasks"`` lacks
                       its extra (``fileresponse[celery]``, ``fileresponse[tasks]``)
``fileresponse.E030``  a kind listed in ``DERIVATIVES_KINDS`` lacks its library (its
                       extra is not installed, or ``FFMPEG`` is no executable)
``fileresponse.W030``  a media kind (pdf, video, audio) lacks its library, when
                       derivatives are in use and ``DERIVATIVES_KINDS`` is ``None``
``fileresponse.E031``  ``DERIVATIVES_COMMANDS`` is not valid (names, keys, ``argv``,
                       placeholders, formats)
``fileresponse.E040``  ``FAST_PATHS`` or ``FAST_PATH_HEADERS`` is not valid (a prefix
                       that is not ``/.../``, an unknown target, a header name)
``fileresponse.E041``  a ``"static"`` fast path, and ``STATIC_ROOT`` is not set
``fileresponse.E042``  a fast path's ``{"storage": alias}`` is not in ``STORAGES``
``fileresponse.W040``  a fast path's ``{"root": dir}`` (or ``STATIC_ROOT``) is not a
                       directory (yet: ``collectstatic`` may make it)
``fileresponse.E050``  a QueuedStorage's ``local`` or ``remote`` storage cannot be
                       built (an alias not in ``STORAGES``, a bad backend or options)
``fileresponse.E051``  the transfer engine (``TRANSFERS_ENGINE`` or a QueuedStorage's
                       ``engine``) lacks its library (Celery, Django Tasks)
``fileresponse.E052``  ``UPLOADS_STAGING_STORAGE`` is not in ``STORAGES``
=====================  ==============================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from .conf import get_config, settings_table, validate, validate_minio_types

if TYPE_CHECKING:
    from .conf import Config
    from .storage.minio.storage import MinioStorage

__all__ = [
    "check_derivatives",
    "check_fast_paths",
    "check_minio",
    "check_minio_storages",
    "check_settings",
    "check_transfers",
]

_EXECUTORS = ("process", "thread", "celery", "tasks")


@register()
def check_settings(**kwargs: Any) -> list[CheckMessage]:
    try:
        configured = settings_table("FILERESPONSE")
    except ImproperlyConfigured:
        return [Error("FILERESPONSE must be a dict.", id="fileresponse.E001")]
    return [
        Error(f"FILERESPONSE: {problem}.", id=_problem_id(problem))
        for problem in validate(configured)
    ]


def _problem_id(problem: str) -> str:
    if problem.startswith("DERIVATIVES_COMMANDS"):
        return "fileresponse.E031"
    if problem.startswith("FAST_PATH"):
        return "fileresponse.E040"
    return "fileresponse.E002"


@register()
def check_minio(**kwargs: Any) -> list[CheckMessage]:
    """``FILERESPONSE_MINIO`` is valid, and each MinioStorage of ``STORAGES`` answers.

    Refused credentials and a missing bucket are errors; a storage that does
    not answer within its (capped) timeouts is a warning.
    """
    try:
        configured = settings_table("FILERESPONSE_MINIO")
    except ImproperlyConfigured:
        return [Error("FILERESPONSE_MINIO must be a dict.", id="fileresponse.E010")]
    problems = validate_minio_types(configured)
    if problems:
        return [
            Error(f"FILERESPONSE_MINIO: {problem}.", id="fileresponse.E010") for problem in problems
        ]
    return check_minio_storages()


def check_minio_storages() -> list[CheckMessage]:
    """Problems of the MinioStorages of ``STORAGES``: each answers and has its bucket.

    One bounded request per distinct endpoint, credentials and bucket
    (``bucket_exists``, at most ``CONNECT_TIMEOUT`` + ``READ_TIMEOUT`` each,
    capped at 5 s): an error for refused credentials (E011) or a missing
    bucket (E012), a warning for a storage that does not answer (W011: it
    may come up later).
    """
    import dataclasses

    from .exceptions import SourceUnavailable
    from .storage.minio.clients import client_key, sync_client
    from .storage.minio.errors import translate_sync_error

    try:
        minio_storages = _minio_storages()
    except ImproperlyConfigured as error:
        return [Error(str(error), id="fileresponse.E010")]
    messages: list[CheckMessage] = []
    seen: set[tuple[object, ...]] = set()
    for alias, storage in minio_storages.items():
        config = storage.config
        identity = (*client_key(config), config.BUCKET)
        if identity in seen:
            continue
        seen.add(identity)
        bounded = dataclasses.replace(
            config,
            CONNECT_TIMEOUT=min(config.CONNECT_TIMEOUT, 5.0),
            READ_TIMEOUT=min(config.READ_TIMEOUT, 5.0),
        )
        where = f"STORAGES[{alias!r}] ({bounded.endpoint_url}, bucket {config.BUCKET!r})"
        client = sync_client(bounded)
        try:
            exists = client.minio.bucket_exists(config.BUCKET)
        except Exception as error:
            translated = translate_sync_error(bounded, error)
            if isinstance(translated, SourceUnavailable):
                messages.append(Warning(f"{where}: {translated}", id="fileresponse.W011"))
            elif translated is not None:
                messages.append(Error(f"{where}: {translated}", id="fileresponse.E011"))
            else:
                raise
            continue
        if not exists:
            messages.append(Error(f"{where}: the bucket does not exist", id="fileresponse.E012"))
    return messages


def _minio_storages() -> dict[str, MinioStorage]:
    """The MinioStorage instances of ``settings.STORAGES``, by alias."""
    from django.core.files.storage import storages
    from django.utils.module_loading import import_string

    from .storage.minio.storage import MinioStorage

    found: dict[str, MinioStorage] = {}
    for alias, entry in (getattr(settings, "STORAGES", {}) or {}).items():
        try:
            backend_class = import_string(entry.get("BACKEND", ""))
        except ImportError:
            continue
        if isinstance(backend_class, type) and issubclass(backend_class, MinioStorage):
            storage = storages[alias]
            assert isinstance(storage, MinioStorage)
            found[alias] = storage
    return found


def _settings_valid() -> bool:
    """Whether ``FILERESPONSE`` is a table of valid values (else E001/E002 report it)."""
    try:
        configured = settings_table("FILERESPONSE")
    except ImproperlyConfigured:
        return False
    return not validate(configured)


@register()
def check_derivatives(**kwargs: Any) -> list[CheckMessage]:
    """The ``DERIVATIVES_*`` settings name storages, an engine and an executor that exist."""
    if not _settings_valid():
        return []  # E001 or E002 says what is wrong first
    config = get_config()
    storages = getattr(settings, "STORAGES", {}) or {}
    messages: list[CheckMessage] = [
        Error(
            f"FILERESPONSE: DERIVATIVES_SOURCE_STORAGES names {alias!r}, "
            "which is not in settings.STORAGES.",
            hint=f"Known aliases: {', '.join(sorted(storages)) or 'none'}.",
            id="fileresponse.E020",
        )
        for alias in config.DERIVATIVES_SOURCE_STORAGES
        if alias not in storages
    ]
    if config.DERIVATIVES_STORAGE is not None and config.DERIVATIVES_STORAGE not in storages:
        messages.append(
            Error(
                f"FILERESPONSE: DERIVATIVES_STORAGE {config.DERIVATIVES_STORAGE!r} "
                "is not in settings.STORAGES.",
                hint="Add it to STORAGES, or set DERIVATIVES_ROOT instead.",
                id="fileresponse.E021",
            )
        )
    if _derivatives_in_use(settings_table("FILERESPONSE")):
        from .derivatives.processors import get_engine

        try:
            get_engine(config.DERIVATIVES_ENGINE)
        except ImproperlyConfigured as error:
            messages.append(Error(f"FILERESPONSE: {error}.", id="fileresponse.E022"))
        messages.extend(_kind_messages(config))
    problem = _executor_problem(config.DERIVATIVES_EXECUTOR)
    if problem is not None:
        messages.append(Error(f"FILERESPONSE: {problem}.", id="fileresponse.E023"))
    return messages


def _kind_messages(config: Config) -> list[CheckMessage]:
    """E030 for each listed kind without its library; W030 for each media kind under auto."""
    if config.DERIVATIVES_KINDS is None:
        from .derivatives.processors.media import missing_libraries

        return [
            Warning(f"FILERESPONSE: {problem}.", id="fileresponse.W030")
            for problem in missing_libraries(config)
        ]
    from .derivatives.processors import processors

    return [
        Error(
            f"FILERESPONSE: {reason}.",
            hint=f"Install it, or leave {processor.kind!r} out of DERIVATIVES_KINDS.",
            id="fileresponse.E030",
        )
        for processor in processors()
        if processor.kind in config.DERIVATIVES_KINDS
        and (reason := processor.unavailable(config)) is not None
    ]


def _derivatives_in_use(configured: Mapping[str, Any]) -> bool:
    """A ``DERIVATIVES_*`` setting is given, a fast path or the URLconf serves derivatives."""
    if any(str(key).startswith("DERIVATIVES_") for key in configured):
        return True
    if "derivatives" in get_config().FAST_PATHS.values():
        return True
    from django.urls import NoReverseMatch, reverse

    try:
        reverse("fileresponse:derivative", args=("s", "o", "n"))
    except NoReverseMatch:
        return False
    except Exception:  # a broken URLconf, which Django's own checks report
        return False
    return True


def _executor_problem(choice: str) -> str | None:
    from django.utils.module_loading import import_string

    from .derivatives.executor import REMOTE_EXECUTORS

    if choice in REMOTE_EXECUTORS:
        try:
            import_string(REMOTE_EXECUTORS[choice])  # its SDK, and the task it defines
        except ImproperlyConfigured as error:
            return str(error)
        return None
    if choice in _EXECUTORS:
        return None

    try:
        executor = import_string(choice)
    except ImportError as error:
        return (
            f"DERIVATIVES_EXECUTOR {choice!r} is neither {' nor '.join(map(repr, _EXECUTORS))} "
            f"nor an importable dotted path ({error})"
        )
    if not (callable(executor) and hasattr(executor, "run") and hasattr(executor, "shutdown")):
        return f"DERIVATIVES_EXECUTOR {choice!r} is not a class with run(job) and shutdown()"
    return None


@register()
def check_fast_paths(**kwargs: Any) -> list[CheckMessage]:
    """Each target of ``FAST_PATHS`` can be served: ``STATIC_ROOT`` set, storages, roots."""
    if not _settings_valid():
        return []  # E001, E002 or E040 says what is wrong first
    storages = getattr(settings, "STORAGES", {}) or {}
    messages: list[CheckMessage] = []
    for prefix, target in get_config().FAST_PATHS.items():
        where = f"FILERESPONSE: FAST_PATHS[{prefix!r}]"
        root: str | None = None
        if target == "static":
            if not settings.STATIC_ROOT:
                messages.append(
                    Error(
                        f"{where} serves STATIC_ROOT, which is not set.",
                        hint="Set STATIC_ROOT, the directory collectstatic fills.",
                        id="fileresponse.E041",
                    )
                )
                continue
            root = os.fspath(settings.STATIC_ROOT)
        elif isinstance(target, Mapping) and "storage" in target:
            if target["storage"] not in storages:
                messages.append(
                    Error(
                        f"{where}: storage {target['storage']!r} is not in settings.STORAGES.",
                        hint=f"Known aliases: {', '.join(sorted(storages)) or 'none'}.",
                        id="fileresponse.E042",
                    )
                )
        elif isinstance(target, Mapping):
            root = target["root"]
        if root is not None and not os.path.isdir(root):
            messages.append(
                Warning(
                    f"{where}: {root!r} is not a directory; every request there is a 404.",
                    id="fileresponse.W040",
                )
            )
    return messages


@register()
def check_transfers(**kwargs: Any) -> list[CheckMessage]:
    """QueuedStorages name storages that can be built, engines that can run, staging exists."""
    import importlib.util

    from django.utils.module_loading import import_string

    from .storage.queued.engines import engine_name
    from .storage.queued.storage import QueuedStorage

    if not _settings_valid():
        return []  # E001 or E002 says what is wrong first
    storages_setting = getattr(settings, "STORAGES", {}) or {}
    messages: list[CheckMessage] = []
    engines = {engine_name()}
    for alias, entry in storages_setting.items():
        try:
            backend = import_string(entry.get("BACKEND", ""))
        except ImportError:
            continue
        if not (isinstance(backend, type) and issubclass(backend, QueuedStorage)):
            continue
        where = f"STORAGES[{alias!r}] (QueuedStorage)"
        try:
            storage = backend(**(entry.get("OPTIONS") or {}))
            for role in ("local", "remote"):
                getattr(storage, role)
            engines.add(engine_name(storage.engine))
        except Exception as error:
            messages.append(Error(f"{where}: {error}", id="fileresponse.E050"))
    needs = {"celery": ("celery", "fileresponse[celery]"), "tasks": (None, "django-tasks")}
    for engine in sorted(engines):
        if engine not in needs:
            continue
        module, extra = needs[engine]
        found = (
            importlib.util.find_spec(module) is not None
            if module is not None
            else any(importlib.util.find_spec(name) for name in ("django.tasks", "django_tasks"))
        )
        if not found:
            messages.append(
                Error(
                    f"FILERESPONSE: the transfer engine {engine!r} cannot be imported.",
                    hint=f"pip install '{extra}', or choose another engine.",
                    id="fileresponse.E051",
                )
            )
    staging = get_config().UPLOADS_STAGING_STORAGE
    if staging is not None and staging not in storages_setting:
        messages.append(
            Error(
                f"FILERESPONSE: UPLOADS_STAGING_STORAGE {staging!r} is not in settings.STORAGES.",
                hint=f"Known aliases: {', '.join(sorted(storages_setting)) or 'none'}.",
                id="fileresponse.E052",
            )
        )
    return messages
