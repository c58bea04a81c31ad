"""Diagnostic response fields: ``Cache-Status`` (RFC 9211) and ``Server-Timing`` (W3C).

Serialization only, pure: no Django, no I/O. ``Cache-Status`` is a Structured Field
List (RFC 8941 section 3.1) with one member per cache; ``Server-Timing`` is the
header of W3C Server Timing (section 3), durations in milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CacheStatus", "Metric", "server_timing"]

#: RFC 8941 section 3.3.4: ``sf-token = ( ALPHA / "*" ) *( tchar / ":" / "/" )``.
_SF_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+.^_`|~0-9A-Za-z:/-]*")
#: RFC 8941 section 3.3.3: a String holds printable ASCII only.
_SF_STRING_CHARACTERS = re.compile(r"[\x20-\x7e]*")
#: RFC 9110 section 5.6.2: ``token = 1*tchar``.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _bare_item(value: str) -> str:
    """A Token when ``value`` is one (RFC 8941 section 4.1.7), else a String (4.1.6)."""
    if _SF_TOKEN.fullmatch(value):
        return value
    if not _SF_STRING_CHARACTERS.fullmatch(value):
        raise ValueError(f"not serializable as a structured field string: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _quoted_string(value: str) -> str:
    """RFC 9110 section 5.6.4, of printable ASCII only."""
    if not _SF_STRING_CHARACTERS.fullmatch(value):
        raise ValueError(f"not a printable ASCII description: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class CacheStatus:
    """One cache's member of ``Cache-Status`` (RFC 9211 section 2); false flags are left out."""

    #: The cache's identifier: a Token or a String (section 2).
    cache: str
    #: Section 2.1: the request was satisfied by the cache, not forwarded.
    hit: bool = False
    #: Section 2.2: why the request went forward (``uri-miss``, ``miss``, ``stale``...).
    fwd: str | None = None
    #: Section 2.6: the request was collapsed with another one going forward.
    collapsed: bool = False
    #: Section 2.5: the cache stored the response.
    stored: bool = False
    #: Section 2.8: implementation-specific information, a Token or a String.
    detail: str | None = None

    def serialize(self) -> str:
        """The member, parameters in the order of RFC 9211's examples (section 3)."""
        if self.hit == (self.fwd is not None):
            raise ValueError("a cache entry is either a hit or forwarded (fwd), not both")
        parts = [_bare_item(self.cache)]
        if self.hit:
            parts.append("hit")  # RFC 8941 section 4.1.1.2: a true Boolean has no "=?1"
        if self.fwd is not None:
            if not _SF_TOKEN.fullmatch(self.fwd):
                raise ValueError(f"fwd must be a token, not {self.fwd!r}")
            parts.append(f"fwd={self.fwd}")
        if self.collapsed:
            parts.append("collapsed")
        if self.stored:
            parts.append("stored")
        if self.detail is not None:
            parts.append(f"detail={_bare_item(self.detail)}")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Metric:
    """One ``server-timing-metric`` (W3C Server Timing section 3)."""

    #: ``metric-name``: a token.
    name: str
    #: The ``dur`` parameter, in milliseconds.
    milliseconds: float | None = None
    #: The ``desc`` parameter.
    description: str | None = None

    def serialize(self) -> str:
        if not _TOKEN.fullmatch(self.name):
            raise ValueError(f"a metric name is a token, not {self.name!r}")
        parts = [self.name]
        if self.milliseconds is not None:
            parts.append(f"dur={max(self.milliseconds, 0.0):.1f}")
        if self.description is not None:
            parts.append(f"desc={_quoted_string(self.description)}")
        return ";".join(parts)


def server_timing(metrics: Iterable[Metric]) -> str:
    """The ``Server-Timing`` field value of ``metrics`` (``#server-timing-metric``)."""
    return ", ".join(metric.serialize() for metric in metrics)
