"""The checks of ``DERIVATIVES_COMMANDS``: the external commands a site registers."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from typing import Any

from .tables import is_positive_number

__all__ = ["COMMAND_PLACEHOLDERS", "command_table_problems"]

_COMMAND_NAME = re.compile(r"^[a-z0-9_-]{1,40}$")
_COMMAND_KEYS = frozenset({"argv", "formats", "timeout", "stdin", "max_memory", "max_cpu"})
_FORMAT_NAME = re.compile(r"^[a-z0-9]{1,10}$")
#: The placeholders an ``argv`` item may hold, each substituted by a validated value.
COMMAND_PLACEHOLDERS = frozenset({"input", "format", "width", "height", "quality"})


def command_table_problems(table: Mapping[str, Any]) -> list[str]:
    """Problems with ``DERIVATIVES_COMMANDS``, as sentences (empty when fine)."""
    problems = []
    for name, entry in table.items():
        where = f"DERIVATIVES_COMMANDS[{name!r}]"
        if not _COMMAND_NAME.match(str(name)):
            problems.append(f"{where}: a command name is 1..40 of a-z, 0-9, _ and -")
            continue
        if not isinstance(entry, Mapping):
            problems.append(f"{where} must be a dict, not {type(entry).__name__}")
            continue
        problems.extend(
            f"{where}: unknown key {key!r} (known: {', '.join(sorted(_COMMAND_KEYS))})"
            for key in entry
            if key not in _COMMAND_KEYS
        )
        argv = entry.get("argv")
        if (
            not isinstance(argv, list | tuple)
            or not argv
            or not all(isinstance(item, str) for item in argv)
        ):
            problems.append(f"{where}['argv'] must be a non-empty list of str (never a shell line)")
        else:
            problems.extend(
                f"{where}['argv']: {problem}" for problem in _placeholder_problems(argv)
            )
        formats = entry.get("formats")
        if not isinstance(formats, Mapping) or not formats:
            problems.append(f"{where}['formats'] must map output formats to content types")
        elif not all(
            isinstance(key, str) and _FORMAT_NAME.match(key) and isinstance(value, str) and value
            for key, value in formats.items()
        ):
            problems.append(f"{where}['formats'] must map names like 'png' to content types")
        for key, unit in (
            ("timeout", "seconds"),
            ("max_cpu", "CPU seconds"),
            ("max_memory", "bytes"),
        ):
            value = entry.get(key)
            if value is not None and not is_positive_number(value):
                problems.append(f"{where}[{key!r}] must be a positive number of {unit}")
        if not isinstance(entry.get("stdin", False), bool):
            problems.append(f"{where}['stdin'] must be True or False")
    return problems


def _placeholder_problems(argv: Iterable[str]) -> list[str]:
    problems = []
    for item in argv:
        try:
            fields = [parsed for parsed in string.Formatter().parse(item) if parsed[1] is not None]
        except ValueError as error:
            problems.append(f"{item!r}: {error} (write {{{{ and }}}} for braces)")
            continue
        for _, field_name, spec, conversion in fields:
            if field_name not in COMMAND_PLACEHOLDERS:
                known = ", ".join(f"{{{name}}}" for name in sorted(COMMAND_PLACEHOLDERS))
                problems.append(f"{item!r}: unknown placeholder {{{field_name}}} (known: {known})")
            elif spec or conversion:
                problems.append(f"{item!r}: a placeholder takes no format or conversion")
    return problems
