"""The checks of ``FAST_PATHS`` and ``FAST_PATH_HEADERS``: what the ASGI fast path answers.

Syntax only (no I/O, no other Django setting): whether ``STATIC_ROOT`` is set,
a storage alias exists or a root is a directory is for the system checks
(:mod:`fileresponse.checks`) and the fast path itself (:mod:`fileresponse.fastpath`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = [
    "FAST_PATH_TARGETS",
    "fast_path_headers_problems",
    "fast_path_problems",
    "fast_paths_checked",
]

#: The targets named by a string; the others are ``{"root": dir}`` or ``{"storage": alias}``.
FAST_PATH_TARGETS = ("static", "derivatives")
_TARGET_KEYS = ("root", "storage")

#: ``/a/b/``: segments of RFC 3986 unreserved and sub-delims characters, ``:`` and ``@``
#: (a path as the server decoded it: no ``%``, ``?``, ``#``, backslash or space).
_PREFIX = re.compile(r"^/(?:[A-Za-z0-9._~!$&'()*+,;=:@-]+/)+$")
#: RFC 9110 section 5.6.2: a field name is a token.
_FIELD_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
#: Fields of the representation and its framing, which the responses set themselves.
_OWNED_FIELDS = frozenset(
    {
        "content-length",
        "content-type",
        "content-range",
        "content-encoding",
        "content-disposition",
        "transfer-encoding",
        "etag",
        "last-modified",
        "accept-ranges",
    }
)


def fast_path_problems(table: Mapping[object, object]) -> list[str]:
    """Problems with ``FAST_PATHS`` (prefix -> target), as sentences (empty when fine)."""
    problems = []
    for prefix, target in table.items():
        where = f"FAST_PATHS[{prefix!r}]"
        if not isinstance(prefix, str) or not _PREFIX.match(prefix):
            problems.append(
                f"{where}: a prefix is a URL path that starts and ends with '/', like "
                "'/static/' (not '/' alone; letters, digits and -._~!$&'()*+,;=:@ only)"
            )
        elif any(segment in (".", "..") for segment in prefix.split("/")):
            problems.append(f"{where}: a prefix has no '.' or '..' segment")
        problems.extend(f"{where}: {problem}" for problem in _target_problems(target))
    return problems


def _target_problems(target: object) -> list[str]:
    choices = ", ".join(repr(choice) for choice in FAST_PATH_TARGETS)
    choices += ", {'root': dir} or {'storage': alias}"
    if isinstance(target, str):
        if target in FAST_PATH_TARGETS:
            return []
        return [f"unknown target {target!r} (a target is {choices})"]
    if not isinstance(target, Mapping):
        return [f"a target is {choices}, not {target!r}"]
    if len(target) != 1 or next(iter(target)) not in _TARGET_KEYS:
        return [f"a target dict has one key, 'root' or 'storage', not {sorted(map(str, target))}"]
    ((key, value),) = target.items()
    if key == "root":
        if not isinstance(value, str | os.PathLike) or not os.path.isabs(os.fspath(value)):
            return [f"'root' must be an absolute path, not {value!r}"]
    elif not isinstance(value, str) or not value:
        return [f"'storage' must be an alias of STORAGES, not {value!r}"]
    return []


def fast_path_headers_problems(table: Mapping[object, object]) -> list[str]:
    """Problems with ``FAST_PATH_HEADERS`` (field name -> value), as sentences."""
    problems = []
    for name, value in table.items():
        where = f"FAST_PATH_HEADERS[{name!r}]"
        if not isinstance(name, str) or not _FIELD_NAME.match(name):
            problems.append(f"{where}: a header name is a token like 'X-Content-Type-Options'")
        elif name.lower() in _OWNED_FIELDS:
            problems.append(f"{where}: the file responses set this header themselves")
        if not isinstance(value, str) or any(char in value for char in "\r\n\x00"):
            problems.append(f"{where} must be a str without CR, LF or NUL")
    return problems


def fast_paths_checked(table: Mapping[str, Any]) -> Mapping[str, str | Mapping[str, str]]:
    """A valid ``FAST_PATHS`` made read-only, with its roots as text."""
    return MappingProxyType(
        {
            prefix: target
            if isinstance(target, str)
            else MappingProxyType({key: os.fspath(value) for key, value in target.items()})
            for prefix, target in table.items()
        }
    )
