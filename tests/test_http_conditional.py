"""Preconditions (RFC 9110 section 13.2.2), as a table."""

from __future__ import annotations

import pytest

from fileresponse.http.conditional import (
    Outcome,
    Validators,
    evaluate_preconditions,
    if_range_allows,
)
from fileresponse.http.validators import ETag, format_http_date

MODIFIED = 1_700_000_000
CURRENT = Validators(etag=ETag("v1"), last_modified=MODIFIED)
BEFORE = format_http_date(MODIFIED - 10)
AT = format_http_date(MODIFIED)
AFTER = format_http_date(MODIFIED + 10)

PROCEED, NOT_MODIFIED, FAILED = Outcome.PROCEED, Outcome.NOT_MODIFIED, Outcome.PRECONDITION_FAILED


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("GET", {}, PROCEED),
        # Step 1: If-Match, strong comparison.
        ("GET", {"if-match": '"v1"'}, PROCEED),
        ("GET", {"if-match": '"v0", "v1"'}, PROCEED),
        ("GET", {"if-match": '"v2"'}, FAILED),
        ("GET", {"if-match": 'W/"v1"'}, FAILED),  # weak never matches strongly
        ("GET", {"if-match": "*"}, PROCEED),
        ("GET", {"if-match": "garbage"}, PROCEED),  # no valid member: ignored
        # Step 2: If-Unmodified-Since, only without If-Match.
        ("GET", {"if-unmodified-since": AT}, PROCEED),
        ("GET", {"if-unmodified-since": AFTER}, PROCEED),
        ("GET", {"if-unmodified-since": BEFORE}, FAILED),
        ("GET", {"if-unmodified-since": "not a date"}, PROCEED),
        ("GET", {"if-match": '"v1"', "if-unmodified-since": BEFORE}, PROCEED),
        # Step 3: If-None-Match, weak comparison.
        ("GET", {"if-none-match": '"v1"'}, NOT_MODIFIED),
        ("HEAD", {"if-none-match": '"v1"'}, NOT_MODIFIED),
        ("GET", {"if-none-match": 'W/"v1"'}, NOT_MODIFIED),
        ("GET", {"if-none-match": '"a", "v1"'}, NOT_MODIFIED),
        ("GET", {"if-none-match": "*"}, NOT_MODIFIED),
        ("GET", {"if-none-match": '"v2"'}, PROCEED),
        ("POST", {"if-none-match": '"v1"'}, FAILED),
        ("PUT", {"if-none-match": "*"}, FAILED),
        # Step 4: If-Modified-Since, GET/HEAD and no If-None-Match.
        ("GET", {"if-modified-since": AT}, NOT_MODIFIED),
        ("GET", {"if-modified-since": AFTER}, NOT_MODIFIED),
        ("GET", {"if-modified-since": BEFORE}, PROCEED),
        ("GET", {"if-modified-since": "garbage"}, PROCEED),
        ("POST", {"if-modified-since": AT}, PROCEED),
        ("GET", {"if-none-match": '"v2"', "if-modified-since": AT}, PROCEED),
        # Order: If-Match failing wins over If-None-Match.
        ("GET", {"if-match": '"v2"', "if-none-match": '"v1"'}, FAILED),
    ],
)
def test_evaluate_preconditions(method: str, headers: dict[str, str], expected: Outcome) -> None:
    assert evaluate_preconditions(method, headers, CURRENT) is expected


def test_without_validators() -> None:
    unknown = Validators(etag=None, last_modified=None)
    assert evaluate_preconditions("GET", {"if-match": "*"}, unknown) is FAILED
    assert evaluate_preconditions("GET", {"if-none-match": "*"}, unknown) is PROCEED
    assert evaluate_preconditions("GET", {"if-modified-since": AT}, unknown) is PROCEED
    assert evaluate_preconditions("GET", {"if-unmodified-since": AT}, unknown) is FAILED


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        (None, True),
        ('"v1"', True),
        ('"v2"', False),
        ('W/"v1"', False),  # 13.1.5: a weak tag never matches
        (AT, True),
        (AFTER, False),  # a date must match exactly
        (BEFORE, False),
        ("garbage", False),
    ],
)
def test_if_range(value: str | None, allowed: bool) -> None:
    headers = {} if value is None else {"if-range": value}
    assert if_range_allows(headers, CURRENT) is allowed
