"""Validators: entity tags and HTTP dates (RFC 9110 sections 8.8 and 5.6.7).

Pure functions: no Django, no I/O.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "ETag",
    "format_http_date",
    "last_modified_of",
    "parse_etag_list",
    "parse_http_date",
]

# Section 8.8.3: entity-tag = [ weak ] opaque-tag; etagc excludes DQUOTE,
# control characters and space.
_ETAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')


@dataclass(frozen=True, slots=True)
class ETag:
    """An entity tag; ``opaque`` is the text between the quotes."""

    opaque: str
    weak: bool = False

    def __str__(self) -> str:
        return f'{"W/" if self.weak else ""}"{self.opaque}"'

    def strong_match(self, other: ETag) -> bool:
        """Section 8.8.3.2: both strong and character-for-character equal."""
        return not self.weak and not other.weak and self.opaque == other.opaque

    def weak_match(self, other: ETag) -> bool:
        """Section 8.8.3.2: opaque tags equal, weakness ignored."""
        return self.opaque == other.opaque

    @classmethod
    def parse(cls, value: str) -> ETag | None:
        """One entity tag, or ``None`` if ``value`` is not exactly one."""
        match = _ETAG.fullmatch(value.strip())
        if match is None:
            return None
        return cls(match[2], weak=match[1] is not None)


def parse_etag_list(value: str) -> list[ETag] | None:
    """Parse ``If-Match``/``If-None-Match``: ``"*"`` gives ``None``.

    Returns the valid entity tags in the list; members that are not entity
    tags are dropped, so a header without any valid member gives ``[]``.
    """
    if value.strip() == "*":
        return None
    return [ETag(match[2], weak=match[1] is not None) for match in _ETAG.finditer(value)]


_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_WEEKDAY_LONG = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = rf"(?P<month>{'|'.join(_MONTH_NAMES)})"
# ASCII digits only (RFC 5234 DIGIT): ``\d`` would take any script's digits.
_TIME = r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
# Section 5.6.7: IMF-fixdate, then the obsolete RFC 850 and asctime forms.
_HTTP_DATES = (
    re.compile(rf"{_WEEKDAY}, (?P<day>[0-9]{{2}}) {_MONTH} (?P<year>[0-9]{{4}}) {_TIME} GMT"),
    re.compile(rf"{_WEEKDAY_LONG}, (?P<day>[0-9]{{2}})-{_MONTH}-(?P<year>[0-9]{{2}}) {_TIME} GMT"),
    re.compile(rf"{_WEEKDAY} {_MONTH} (?P<day>[ 0-9][0-9]) {_TIME} (?P<year>[0-9]{{4}})"),
)


def parse_http_date(value: str, *, now: float | None = None) -> int | None:
    """Seconds since the epoch of an HTTP-date, or ``None`` if invalid.

    Two-digit RFC 850 years are read per section 5.6.7: a date that would be
    more than 50 years in the future is taken to be in the past century.
    """
    value = value.strip()
    for pattern in _HTTP_DATES:
        match = pattern.fullmatch(value)
        if match is None:
            continue
        year = int(match["year"])
        if len(match["year"]) == 2:
            current_year = time.gmtime(time.time() if now is None else now).tm_year
            year += current_year - current_year % 100
            if year > current_year + 50:
                year -= 100
        try:
            moment = datetime(
                year,
                _MONTHS[match["month"]],
                int(match["day"]),
                int(match["hour"]),
                int(match["minute"]),
                min(int(match["second"]), 59),  # a leap second counts as :59
                tzinfo=UTC,
            )
        except ValueError:
            return None
        return int(moment.timestamp())
    return None


_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: The last second an IMF-fixdate can write: 9999-12-31T23:59:59Z.
_LAST_HTTP_DATE = 253_402_300_799


def last_modified_of(mtime: float, now: float) -> int | None:
    """A file's modification time as a ``Last-Modified`` time, or ``None`` for none.

    RFC 9110 section 8.8.2.1: never later than the time of the response, so
    a file dated in the future is sent as modified ``now`` (and a date no
    HTTP-date can write never reaches :func:`format_http_date`).
    """
    if not mtime > 0:  # unknown (0), before the epoch, or not a number
        return None
    return int(min(mtime, now, _LAST_HTTP_DATE))


def format_http_date(epoch_seconds: float) -> str:
    """An IMF-fixdate (section 5.6.7) for a time in seconds since the epoch.

    Built by hand rather than with ``strftime``, whose names follow the locale.
    """
    moment = time.gmtime(epoch_seconds)
    return (
        f"{_DAY_NAMES[moment.tm_wday]}, {moment.tm_mday:02d} "
        f"{_MONTH_NAMES[moment.tm_mon - 1]} "
        f"{moment.tm_year:04d} {moment.tm_hour:02d}:{moment.tm_min:02d}:{moment.tm_sec:02d} GMT"
    )
