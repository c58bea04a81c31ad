"""Conditional requests: RFC 9110 section 13.

Pure functions: no Django, no I/O. :func:`evaluate_preconditions` follows the
order of section 13.2.2 step by step.

What is ignored (allowed by the RFC) rather than rejected:

- ``If-Modified-Since``/``If-Unmodified-Since``/``If-Range`` dates that are not
  valid HTTP-dates (sections 13.1.3, 13.1.4 and 13.1.5 say to ignore them);
- ``If-Match``/``If-None-Match`` values without a single valid entity tag
  (the header is then treated as absent);
- ``If-Modified-Since`` on methods other than GET and HEAD (section 13.1.3).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .validators import ETag, parse_etag_list, parse_http_date

__all__ = ["Outcome", "Validators", "evaluate_preconditions", "if_range_allows"]


@dataclass(frozen=True, slots=True)
class Validators:
    """What the server knows of the selected representation."""

    etag: ETag | None
    last_modified: int | None


class Outcome(enum.Enum):
    """The result of evaluating the preconditions."""

    PROCEED = 200
    NOT_MODIFIED = 304
    PRECONDITION_FAILED = 412


def _etag_list(headers: Mapping[str, str], name: str) -> list[ETag] | Literal[False] | None:
    """``None`` for ``*``, the tags for a usable list, ``False`` if absent or unusable."""
    value = headers.get(name)
    if value is None:
        return False
    tags = parse_etag_list(value)
    if tags == []:
        return False
    return tags


def evaluate_preconditions(
    method: str, headers: Mapping[str, str], validators: Validators
) -> Outcome:
    """Evaluate the request preconditions (RFC 9110 section 13.2.2).

    ``headers`` maps lower-case header names to values.
    """
    safe = method in ("GET", "HEAD")
    last_modified = validators.last_modified

    # Step 1: If-Match (section 13.1.1), strong comparison.
    if_match = _etag_list(headers, "if-match")
    if if_match is not False:
        if not _matches(if_match, validators.etag, strong=True):
            return Outcome.PRECONDITION_FAILED
    else:
        # Step 2: If-Unmodified-Since (section 13.1.4), only without If-Match.
        since = _date(headers, "if-unmodified-since")
        if since is not None and (last_modified is None or last_modified > since):
            return Outcome.PRECONDITION_FAILED

    # Step 3: If-None-Match (section 13.1.2), weak comparison.
    if_none_match = _etag_list(headers, "if-none-match")
    if if_none_match is not False:
        if _matches(if_none_match, validators.etag, strong=False):
            return Outcome.NOT_MODIFIED if safe else Outcome.PRECONDITION_FAILED
    elif safe:
        # Step 4: If-Modified-Since (section 13.1.3), GET and HEAD without If-None-Match.
        since = _date(headers, "if-modified-since")
        if since is not None and last_modified is not None and last_modified <= since:
            return Outcome.NOT_MODIFIED

    # Step 5 (If-Range) is decided with the Range header: see if_range_allows.
    return Outcome.PROCEED


def if_range_allows(headers: Mapping[str, str], validators: Validators) -> bool:
    """Whether the ``Range`` header may be honoured (RFC 9110 section 13.1.5).

    True without ``If-Range``. With an entity tag, a strong match is needed;
    with a date, it must equal ``Last-Modified`` exactly. Anything else makes
    the server ignore ``Range`` and send the whole representation.
    """
    value = headers.get("if-range")
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        tag = ETag.parse(value)
        current = validators.etag
        return tag is not None and current is not None and tag.strong_match(current)
    date = parse_http_date(value)
    return date is not None and date == validators.last_modified


def _matches(tags: list[ETag] | None, current: ETag | None, *, strong: bool) -> bool:
    """Whether a list (``None`` for ``*``) matches the current entity tag."""
    if current is None:
        return False
    if tags is None:
        return True
    if strong:
        return any(tag.strong_match(current) for tag in tags)
    return any(tag.weak_match(current) for tag in tags)


def _date(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    return None if value is None else parse_http_date(value)
