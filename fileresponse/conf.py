"""Settings: one defaults table, read when objects are built.

Projects set a dict ``FILERESPONSE`` in their Django settings; keyword
arguments of the classes override it. Unknown keys raise
:class:`~django.core.exceptions.ImproperlyConfigured` (and fail ``manage.py
check`` through :mod:`fileresponse.checks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from django.core.exceptions import ImproperlyConfigured

__all__ = ["DEFAULTS", "Config", "get_config"]


@dataclass(frozen=True, slots=True)
class Config:
    """The effective ``FILERESPONSE`` settings."""

    #: Bytes read and sent at a time; memory per response is about two chunks.
    CHUNK_SIZE: int = 256 * 1024
    #: ``Cache-Control`` for file responses, or ``None`` for no header.
    CACHE_CONTROL: str | None = None
    #: Ranges beyond this count in one ``Range`` header make it ignored (``200``).
    MAX_RANGES: int = 16
    #: Default root of :func:`fileresponse.views.serve`; ``None`` means ``MEDIA_ROOT``.
    DOCUMENT_ROOT: str | None = None
    #: Threads reading files for async responses, per process.
    IO_THREADS: int = 8
    #: ``Retry-After`` seconds sent with a ``503`` when a storage is unavailable.
    RETRY_AFTER: int = 5


DEFAULTS: Mapping[str, Any] = {field.name: field.default for field in fields(Config)}

_TYPES: Mapping[str, tuple[type, ...]] = {
    "CHUNK_SIZE": (int,),
    "CACHE_CONTROL": (str, type(None)),
    "MAX_RANGES": (int,),
    "DOCUMENT_ROOT": (str, type(None)),
    "IO_THREADS": (int,),
    "RETRY_AFTER": (int,),
}


def validate(values: Mapping[str, Any]) -> list[str]:
    """Problems with a ``FILERESPONSE`` dict, as sentences (empty when fine)."""
    problems = [
        f"unknown key {key!r} (known: {', '.join(sorted(DEFAULTS))})"
        for key in values
        if key not in DEFAULTS
    ]
    for key, value in values.items():
        expected = _TYPES.get(key)
        if expected is None:
            continue
        if key == "DOCUMENT_ROOT" and hasattr(value, "__fspath__"):
            continue
        if not isinstance(value, expected) or isinstance(value, bool):
            names = " or ".join(
                "None" if kind is type(None) else kind.__name__ for kind in expected
            )
            problems.append(f"{key} must be {names}, not {type(value).__name__}")
        elif isinstance(value, int) and value < (0 if key == "RETRY_AFTER" else 1):
            problems.append(f"{key} must be positive, not {value}")
    return problems


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
    if values.get("DOCUMENT_ROOT") is not None:
        values["DOCUMENT_ROOT"] = str(values["DOCUMENT_ROOT"])
    return Config(**values)
