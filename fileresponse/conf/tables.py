"""How a settings table is read and checked: its runtime types come from the annotations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, Field, fields
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "default_of",
    "is_positive_number",
    "runtime_types",
    "settings_table",
    "type_problem",
    "types_of",
    "unknown_keys",
]


def default_of(item: Field[Any]) -> Any:
    return item.default_factory() if item.default_factory is not MISSING else item.default


def runtime_types(hint: object) -> tuple[type, ...]:
    """The ``isinstance`` check of a settings annotation.

    Unions are split; a ``tuple`` also accepts a list (settings files write
    lists) and a ``float`` an ``int``.
    """
    if get_origin(hint) in (Union, UnionType):
        return tuple(kind for member in get_args(hint) for kind in runtime_types(member))
    origin = get_origin(hint) or hint
    if origin is tuple:
        return (tuple, list)
    if origin is float:
        return (int, float)
    if not isinstance(origin, type):
        raise TypeError(f"no runtime check for the settings annotation {hint!r}")
    return (origin,)


def types_of(table: type) -> Mapping[str, tuple[type, ...]]:
    """The runtime types of each field of a settings dataclass, from its annotations."""
    hints = get_type_hints(table)
    return {item.name: runtime_types(hints[item.name]) for item in fields(table)}


def unknown_keys(values: Mapping[str, Any], known: Mapping[str, Any]) -> list[str]:
    return [
        f"unknown key {key!r} (known: {', '.join(sorted(known))})"
        for key in values
        if key not in known
    ]


def type_problem(key: str, value: object, expected: tuple[type, ...]) -> str | None:
    """Why ``value`` is not of ``expected``, or ``None``; a bool is no int unless expected."""
    if isinstance(value, expected) and not (isinstance(value, bool) and bool not in expected):
        return None
    names = " or ".join("None" if kind is type(None) else kind.__name__ for kind in expected)
    return f"{key} must be {names}, not {type(value).__name__}"


def is_positive_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def settings_table(name: str) -> Mapping[str, Any]:
    """The dict ``settings.<name>``, empty when unset; ImproperlyConfigured when not a dict."""
    from django.conf import settings

    configured = getattr(settings, name, None) or {}
    if not isinstance(configured, Mapping):
        raise ImproperlyConfigured(f"{name} must be a dict")
    return configured
