"""Entity tags and HTTP dates (RFC 9110 sections 8.8 and 5.6.7), as tables."""

from __future__ import annotations

import locale

import pytest

from fileresponse.http.validators import (
    ETag,
    format_http_date,
    last_modified_of,
    parse_etag_list,
    parse_http_date,
)

EPOCH_1994 = 784111777  # Sun, 06 Nov 1994 08:49:37 GMT, the RFC's example


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850
        "Sun Nov  6 08:49:37 1994",  # obsolete asctime
        "  Sun, 06 Nov 1994 08:49:37 GMT ",
    ],
)
def test_parse_http_date_forms(value: str) -> None:
    assert parse_http_date(value) == EPOCH_1994


@pytest.mark.parametrize(
    "value",
    [
        "",
        "yesterday",
        "Sun, 06 Nov 1994 08:49:37",  # no GMT
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 31 Feb 1994 08:49:37 GMT",  # no such day
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT",
        "1994-11-06T08:49:37Z",
        "Sun, 06 Nov 1994 08:49:37 GMT; length=10",
    ],
)
def test_parse_http_date_invalid(value: str) -> None:
    assert parse_http_date(value) is None


def test_rfc850_two_digit_year_is_in_the_past_century_when_too_far_ahead() -> None:
    now = parse_http_date("Tue, 24 Nov 2026 00:00:00 GMT")
    assert now is not None
    assert parse_http_date("Friday, 06-Nov-26 08:49:37 GMT", now=now) == parse_http_date(
        "Fri, 06 Nov 2026 08:49:37 GMT"
    )
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", now=now) == EPOCH_1994


def test_format_http_date_ignores_the_locale() -> None:
    previous = locale.setlocale(locale.LC_TIME)
    try:
        for name in ("de_DE.UTF-8", "fr_FR.UTF-8"):
            try:
                locale.setlocale(locale.LC_TIME, name)
                break
            except locale.Error:
                continue
        assert format_http_date(EPOCH_1994) == "Sun, 06 Nov 1994 08:49:37 GMT"
    finally:
        locale.setlocale(locale.LC_TIME, previous)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"abc"', [ETag("abc")]),
        ('W/"abc"', [ETag("abc", weak=True)]),
        ('"a", W/"b" ,"c"', [ETag("a"), ETag("b", weak=True), ETag("c")]),
        ('""', [ETag("")]),
        ("*", None),
        (" * ", None),
        ("abc", []),  # not an entity tag
        ('"a b"', []),  # space is not an etagc
    ],
)
def test_parse_etag_list(value: str, expected: list[ETag] | None) -> None:
    assert parse_etag_list(value) == expected


@pytest.mark.parametrize(
    ("left", "right", "strong", "weak"),
    [
        # RFC 9110 section 8.8.3.2, the comparison table.
        ('W/"1"', 'W/"1"', False, True),
        ('W/"1"', 'W/"2"', False, False),
        ('W/"1"', '"1"', False, True),
        ('"1"', '"1"', True, True),
    ],
)
def test_etag_comparison(left: str, right: str, strong: bool, weak: bool) -> None:
    first, second = ETag.parse(left), ETag.parse(right)
    assert first is not None
    assert second is not None
    assert first.strong_match(second) is strong
    assert first.weak_match(second) is weak


def test_etag_round_trip() -> None:
    assert str(ETag("x")) == '"x"'
    assert str(ETag("x", weak=True)) == 'W/"x"'
    assert ETag.parse('"x", "y"') is None


@pytest.mark.parametrize(
    "value",
    [
        "Sun, \u0660\u0666 Nov \u0661\u0669\u0669\u0664 08:49:37 GMT",  # Arabic-Indic digits
        "Sun, 06 Nov 1994 \uff10\uff18:49:37 GMT",  # full-width digits
    ],
)
def test_http_dates_have_ascii_digits_only(value: str) -> None:
    assert parse_http_date(value) is None


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("mtime", "expected"),
    [
        (1_600_000_000.5, 1_600_000_000),
        (NOW + 365 * 86400, int(NOW)),  # in the future: "now" (RFC 9110 section 8.8.2.1)
        (4.6e18, int(NOW)),  # beyond any HTTP-date (and time.gmtime)
        (0.0, None),
        (-5.0, None),
        (float("nan"), None),
    ],
)
def test_last_modified_is_never_in_the_future(mtime: float, expected: int | None) -> None:
    assert last_modified_of(mtime, NOW) == expected
    if expected is not None:
        format_http_date(expected)  # always writable
