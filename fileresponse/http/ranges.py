"""Byte ranges: parsing and validating the ``Range`` request header.

RFC 9110 section 14. Pure functions: no Django, no I/O.

What is ignored and what is rejected (section 14.2 lets a server ignore
``Range``; ignoring means a ``200`` with the whole representation):

- a unit other than ``bytes``, a syntax error anywhere in the header, a
  ``last-pos`` before its ``first-pos``, a header longer than
  :data:`MAX_HEADER_LENGTH` or with more than ``max_ranges`` ranges:
  :class:`MalformedRange`, which callers treat as "no ``Range`` header";
- a syntactically valid set in which no range overlaps the representation:
  :class:`RangeNotSatisfiable`, answered with ``416``.

Overlapping or adjacent ranges are coalesced (section 15.3.7.2 allows it), so
a response never carries a byte twice; the others keep the order of the
request, as that section asks of multipart responses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "MAX_HEADER_LENGTH",
    "ByteRange",
    "MalformedRange",
    "RangeNotSatisfiable",
    "parse_range_header",
]

MAX_HEADER_LENGTH = 1024

_RANGE_SPEC = re.compile(r"^(?:(?P<first>[0-9]+)-(?P<last>[0-9]*)|-(?P<suffix>[0-9]+))$")


class MalformedRange(ValueError):
    """The ``Range`` header cannot be used: it is ignored (RFC 9110 section 14.2)."""


class RangeNotSatisfiable(ValueError):
    """No range overlaps the representation: ``416`` (RFC 9110 section 15.5.17)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"no satisfiable range in a representation of {size} bytes")
        self.size = size


@dataclass(frozen=True, slots=True)
class ByteRange:
    """An inclusive range of byte positions, ``first`` to ``last``."""

    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self, size: int) -> str:
        """The ``Content-Range`` value of this range (RFC 9110 section 14.4)."""
        return f"bytes {self.first}-{self.last}/{size}"


def parse_range_header(value: str, size: int, *, max_ranges: int = 16) -> list[ByteRange]:
    """Parse a ``Range`` header against a representation of ``size`` bytes.

    Returns the satisfiable ranges, coalesced, in the order of the request.

    Raises :class:`MalformedRange` when the header must be ignored, and
    :class:`RangeNotSatisfiable` when it is valid but nothing overlaps.
    """
    if len(value) > MAX_HEADER_LENGTH:
        raise MalformedRange("Range header too long")
    unit, separator, range_set = value.partition("=")
    if not separator:
        raise MalformedRange("no '=' in Range header")
    # Section 14.1: range units are compared case-insensitively.
    if unit.strip().lower() != "bytes":
        raise MalformedRange(f"unsupported range unit {unit.strip()!r}")
    # Section 5.6.1: a list may contain empty elements and whitespace around commas.
    specs = [spec.strip() for spec in range_set.split(",") if spec.strip()]
    if not specs:
        raise MalformedRange("empty range set")
    if len(specs) > max_ranges:
        raise MalformedRange(f"more than {max_ranges} ranges")

    satisfiable: list[ByteRange] = []
    for spec in specs:
        match = _RANGE_SPEC.match(spec)
        if match is None:
            raise MalformedRange(f"invalid range spec {spec!r}")
        if match["suffix"] is not None:
            # Section 14.1.3: a suffix range selects the last N bytes; a
            # suffix longer than the representation selects all of it.
            suffix = int(match["suffix"])
            if suffix > 0 and size > 0:
                satisfiable.append(ByteRange(max(0, size - suffix), size - 1))
            continue
        first = int(match["first"])
        last = int(match["last"]) if match["last"] else None
        if last is not None and last < first:
            # Section 14.1.1: an int-range with last-pos < first-pos is invalid.
            raise MalformedRange(f"last position before first in {spec!r}")
        if first >= size:
            continue  # Section 14.1.1: unsatisfiable on its own.
        satisfiable.append(ByteRange(first, size - 1 if last is None else min(last, size - 1)))

    if not satisfiable:
        raise RangeNotSatisfiable(size)
    return _coalesce(satisfiable)


def _coalesce(ranges: list[ByteRange]) -> list[ByteRange]:
    """Merge overlapping and adjacent ranges, in request order (RFC 9110 section 15.3.7.2).

    A merged range takes the place of the first of the ranges it covers.
    """
    merged: list[ByteRange] = []
    for current in ranges:
        touching = [
            index
            for index, earlier in enumerate(merged)
            if earlier.first <= current.last + 1 and current.first <= earlier.last + 1
        ]
        if not touching:
            merged.append(current)
            continue
        covered = [merged[index] for index in touching] + [current]
        merged[touching[0]] = ByteRange(
            min(byte_range.first for byte_range in covered),
            max(byte_range.last for byte_range in covered),
        )
        for index in reversed(touching[1:]):
            del merged[index]
    return merged
