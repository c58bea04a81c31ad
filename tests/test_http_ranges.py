"""Range header parsing (RFC 9110 section 14), as tables."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fileresponse.http.ranges import (
    ByteRange,
    MalformedRange,
    RangeNotSatisfiable,
    parse_range_header,
)

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", [(0, 99)]),
        ("bytes=0-0", [(0, 0)]),
        ("bytes=999-999", [(999, 999)]),
        ("bytes=100-", [(100, 999)]),  # 14.1.1: open-ended
        ("bytes=-100", [(900, 999)]),  # 14.1.3: suffix
        ("bytes=-5000", [(0, 999)]),  # suffix longer than the file: all of it
        ("bytes=900-5000", [(900, 999)]),  # end clipped at EOF
        ("BYTES=0-9", [(0, 9)]),  # 14.1: units are case-insensitive
        ("bytes= 0-9 , 20-29", [(0, 9), (20, 29)]),  # OWS around list members
        ("bytes=0-9,,20-29,", [(0, 9), (20, 29)]),  # empty list elements
        ("bytes=20-29,0-9", [(20, 29), (0, 9)]),  # 15.3.7.2: the order of the request
        ("bytes=-10,0-9,500-509", [(990, 999), (0, 9), (500, 509)]),
        ("bytes=0-9,5-19", [(0, 19)]),  # overlapping: coalesced
        ("bytes=0-9,10-19", [(0, 19)]),  # adjacent: coalesced
        ("bytes=10-19,0-9", [(0, 19)]),
        ("bytes=0-499,0-499,0-499", [(0, 499)]),  # repeated: no amplification
        ("bytes=0-,-1", [(0, 999)]),
        ("bytes=5000-,0-9", [(0, 9)]),  # an unsatisfiable member is dropped
        # A merged range takes the place of the first range it covers.
        ("bytes=50-59,0-9,55-69", [(50, 69), (0, 9)]),
        ("bytes=90-99,0-9,50-59,5-55", [(90, 99), (0, 59)]),  # bridges two earlier ranges
        ("bytes=90-99,0-9,50-59,10-49", [(90, 99), (0, 59)]),  # adjacent to both
        ("bytes=90-99,-5,0-9,60-", [(60, 999), (0, 9)]),
    ],
)
def test_satisfiable(header: str, expected: list[tuple[int, int]]) -> None:
    assert parse_range_header(header, SIZE) == [ByteRange(*pair) for pair in expected]


@pytest.mark.parametrize(
    "header",
    [
        "",
        "bytes",
        "bytes=",
        "bytes=,",
        "items=0-9",  # unknown unit: ignored
        "bytes=a-b",
        "bytes=9-0",  # last before first
        "bytes=-",
        "bytes=1-2-3",
        "bytes=0x10-20",
        "bytes=+1-2",
        "bytes=0-9;x",
        "bytes=0-9 20-29",
        "bytes=１-２",  # noqa: RUF001 (non-ASCII digits on purpose)
        "bytes=" + ",".join(f"{index}-{index}" for index in range(17)),  # > max_ranges
        "bytes=" + "0" * 2000 + "-1",  # too long
    ],
)
def test_malformed_is_ignored(header: str) -> None:
    with pytest.raises(MalformedRange):
        parse_range_header(header, SIZE)


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=1000-", SIZE),
        ("bytes=1000-2000", SIZE),
        ("bytes=-0", SIZE),
        ("bytes=0-", 0),
        ("bytes=-10", 0),
        ("bytes=5000-6000,7000-", SIZE),
    ],
)
def test_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range_header(header, size)
    assert caught.value.size == size


def test_max_ranges_is_configurable() -> None:
    header = "bytes=0-0,2-2,4-4"
    assert len(parse_range_header(header, SIZE, max_ranges=3)) == 3
    with pytest.raises(MalformedRange):
        parse_range_header(header, SIZE, max_ranges=2)


def test_content_range() -> None:
    assert ByteRange(0, 99).content_range(1000) == "bytes 0-99/1000"
    assert ByteRange(0, 99).length == 100


@given(
    size=st.integers(min_value=0, max_value=10_000),
    specs=st.lists(
        st.one_of(
            st.tuples(st.integers(0, 20_000), st.integers(0, 20_000)).map(
                lambda pair: f"{min(pair)}-{max(pair)}"
            ),
            st.integers(0, 20_000).map(lambda first: f"{first}-"),
            st.integers(0, 20_000).map(lambda suffix: f"-{suffix}"),
        ),
        min_size=1,
        max_size=16,
    ),
)
def test_result_is_disjoint_in_request_order_and_within_the_file(
    size: int, specs: list[str]
) -> None:
    try:
        ranges = parse_range_header("bytes=" + ",".join(specs), size)
    except RangeNotSatisfiable:
        return
    assert all(0 <= byte_range.first <= byte_range.last < size for byte_range in ranges)
    ordered = sorted(ranges, key=lambda byte_range: byte_range.first)
    assert all(left.last + 1 < right.first for left, right in itertools.pairwise(ordered))
    assert sum(byte_range.length for byte_range in ranges) <= size
    # The bytes that were asked for, each merged range where its first member was asked.
    requested = [byte_range for spec in specs for byte_range in _satisfiable(spec, size)]
    assert _positions(requested) == _positions(ranges)
    first_members = [
        next(index for index, asked in enumerate(requested) if _overlaps(asked, merged))
        for merged in ranges
    ]
    assert first_members == sorted(first_members)


def _satisfiable(spec: str, size: int) -> list[ByteRange]:
    try:
        return parse_range_header(f"bytes={spec}", size)
    except RangeNotSatisfiable:
        return []


def _positions(ranges: list[ByteRange]) -> set[int]:
    return {position for one in ranges for position in range(one.first, one.last + 1)}


def _overlaps(left: ByteRange, right: ByteRange) -> bool:
    return left.first <= right.last and right.first <= left.last
