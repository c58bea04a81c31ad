"""The response plan: status, headers and body layout, as tables."""

from __future__ import annotations

import pytest

from fileresponse.http.headers import content_disposition, guess_content_type, with_charset
from fileresponse.http.plan import Representation, plan_response
from fileresponse.http.ranges import ByteRange
from fileresponse.http.validators import ETag, format_http_date

MODIFIED = 1_700_000_000
FILE = Representation(size=1000, content_type="text/plain", etag=ETag("v1"), last_modified=MODIFIED)
BODY = bytes(range(256)) * 4  # stands for the file's 1000 bytes below


def render(segments: tuple[bytes | ByteRange, ...]) -> bytes:
    return b"".join(
        segment if isinstance(segment, bytes) else BODY[segment.first : segment.last + 1]
        for segment in segments
    )


@pytest.mark.parametrize(
    ("method", "headers", "status", "content_range", "length"),
    [
        ("GET", {}, 200, None, 1000),
        ("HEAD", {}, 200, None, 1000),
        ("GET", {"range": "bytes=0-99"}, 206, "bytes 0-99/1000", 100),
        ("GET", {"range": "bytes=-10"}, 206, "bytes 990-999/1000", 10),
        # The whole file, as nginx answers: download managers probe resumability so.
        ("GET", {"range": "bytes=0-"}, 206, "bytes 0-999/1000", 1000),
        ("GET", {"range": "bytes=0-999999"}, 206, "bytes 0-999/1000", 1000),
        ("GET", {"range": "bytes=-1000"}, 206, "bytes 0-999/1000", 1000),
        ("GET", {"range": "bytes=-5000"}, 206, "bytes 0-999/1000", 1000),
        ("GET", {"range": "bytes=500-,0-499"}, 206, "bytes 0-999/1000", 1000),
        ("GET", {"range": "bytes=0-", "if-range": '"v1"'}, 206, "bytes 0-999/1000", 1000),
        ("GET", {"range": "bytes=0-", "if-range": '"old"'}, 200, None, 1000),
        ("HEAD", {"range": "bytes=0-"}, 200, None, 1000),
        ("GET", {"range": "bytes=0-99,50-150"}, 206, "bytes 0-150/1000", 151),
        ("GET", {"range": "bytes=2000-"}, 416, "bytes */1000", 0),
        ("GET", {"range": "garbage"}, 200, None, 1000),
        ("GET", {"range": "lines=1-2"}, 200, None, 1000),
        ("HEAD", {"range": "bytes=0-99"}, 200, None, 1000),  # 14.2: GET only
        ("POST", {"range": "bytes=0-99"}, 200, None, 1000),
        ("GET", {"range": "bytes=0-99", "if-range": '"v1"'}, 206, "bytes 0-99/1000", 100),
        ("GET", {"range": "bytes=0-99", "if-range": '"old"'}, 200, None, 1000),
        (
            "GET",
            {"range": "bytes=0-99", "if-range": format_http_date(MODIFIED)},
            206,
            "bytes 0-99/1000",
            100,
        ),
        ("GET", {"range": "bytes=2000-", "if-range": '"old"'}, 200, None, 1000),
        ("GET", {"if-none-match": '"v1"', "range": "bytes=0-9"}, 304, None, None),
        ("GET", {"if-match": '"old"', "range": "bytes=0-9"}, 412, None, 0),
    ],
)
def test_status_and_headers(
    method: str,
    headers: dict[str, str],
    status: int,
    content_range: str | None,
    length: int | None,
) -> None:
    plan = plan_response(method, headers, FILE)
    sent = dict(plan.headers)
    assert plan.status == status
    assert sent.get("Content-Range") == content_range
    assert sent.get("Content-Length") == (None if length is None else str(length))
    if status in (200, 206) and method != "HEAD":
        assert plan.content_length == length
    if method == "HEAD":
        assert plan.body == ()


def test_200_headers() -> None:
    plan = plan_response("GET", {}, FILE)
    assert plan.headers == (
        ("Content-Type", "text/plain"),
        ("Content-Length", "1000"),
        ("Accept-Ranges", "bytes"),
        ("ETag", '"v1"'),
        ("Last-Modified", "Tue, 14 Nov 2023 22:13:20 GMT"),
    )
    assert plan.is_whole_file
    assert render(plan.body) == BODY[:1000]


def test_304_carries_the_etag_only() -> None:
    plan = plan_response("GET", {"if-none-match": '"v1"'}, FILE)
    assert plan.headers == (("ETag", '"v1"'),)
    assert plan.body == ()


def test_304_without_etag_carries_last_modified() -> None:
    without_etag = Representation(size=10, content_type="text/plain", last_modified=MODIFIED)
    plan = plan_response("GET", {"if-modified-since": format_http_date(MODIFIED)}, without_etag)
    assert plan.headers == (("Last-Modified", format_http_date(MODIFIED)),)


def test_single_range_body() -> None:
    plan = plan_response("GET", {"range": "bytes=10-19"}, FILE)
    assert render(plan.body) == BODY[10:20]
    assert not plan.is_whole_file


def test_multipart_byteranges() -> None:
    plan = plan_response("GET", {"range": "bytes=0-9,-5"}, FILE, boundary="BOUNDARY")
    sent = dict(plan.headers)
    assert sent["Content-Type"] == "multipart/byteranges; boundary=BOUNDARY"
    body = render(plan.body)
    assert body == (
        b"--BOUNDARY\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-9/1000\r\n\r\n"
        + BODY[0:10]
        + b"\r\n--BOUNDARY\r\nContent-Type: text/plain\r\nContent-Range: bytes 995-999/1000\r\n\r\n"
        + BODY[995:1000]
        + b"\r\n--BOUNDARY--\r\n"
    )
    assert sent["Content-Length"] == str(len(body))


@pytest.mark.parametrize(
    ("header", "parts"),
    [
        ("bytes=-5,0-9", ["995-999", "0-9"]),  # RFC 9110 section 15.3.7.2: request order
        ("bytes=500-509,0-9,100-109", ["500-509", "0-9", "100-109"]),
        ("bytes=500-509,0-9,505-519", ["500-519", "0-9"]),  # merged where the first was
        ("bytes=500-509,0-9,510-519", ["500-519", "0-9"]),  # adjacent: merged too
    ],
)
def test_multipart_parts_follow_the_request(header: str, parts: list[str]) -> None:
    plan = plan_response("GET", {"range": header}, FILE)
    ranges = [segment for segment in plan.body if isinstance(segment, ByteRange)]
    assert [f"{one.first}-{one.last}" for one in ranges] == parts


@pytest.mark.parametrize(
    ("size", "header", "status"),
    [
        # Two one-byte parts with boundary "BOUNDARY": a 160-byte multipart body.
        (160, "bytes=0-0,2-2", 206),
        (159, "bytes=0-0,2-2", 200),
        (26, "bytes=" + ",".join(f"{first}-{first}" for first in range(0, 26, 2)), 200),
    ],
)
def test_multipart_larger_than_the_file_is_the_whole_file(
    size: int, header: str, status: int
) -> None:
    small = Representation(size=size, content_type="text/plain")
    plan = plan_response("GET", {"range": header}, small, boundary="BOUNDARY")
    assert plan.status == status
    assert plan.content_length == (160 if status == 206 else size)
    assert plan.is_whole_file == (status == 200)
    assert "Content-Range" not in dict(plan.headers)


def test_random_boundaries_differ() -> None:
    first = dict(plan_response("GET", {"range": "bytes=0-1,5-6"}, FILE).headers)["Content-Type"]
    second = dict(plan_response("GET", {"range": "bytes=0-1,5-6"}, FILE).headers)["Content-Type"]
    assert first != second


def test_empty_file() -> None:
    empty = Representation(size=0, content_type="text/plain", etag=ETag("e"))
    plan = plan_response("GET", {}, empty)
    assert (plan.status, plan.body, dict(plan.headers)["Content-Length"]) == (200, (), "0")
    assert plan_response("GET", {"range": "bytes=0-"}, empty).status == 416


def test_overlapping_ranges_do_not_amplify() -> None:
    header = "bytes=" + ",".join(["0-999"] * 16)
    plan = plan_response("GET", {"range": header}, FILE)
    assert (plan.status, dict(plan.headers)["Content-Range"]) == (206, "bytes 0-999/1000")
    assert plan.content_length == 1000


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", "text/plain"),
        ("a.PNG", "image/png"),
        ("a.tar.gz", "application/gzip"),
        ("a.svg.bz2", "application/x-bzip"),
        ("noextension", "application/octet-stream"),
        ("a.unknownext", "application/octet-stream"),
    ],
)
def test_guess_content_type(name: str, expected: str) -> None:
    assert guess_content_type(name) == expected


@pytest.mark.parametrize(
    ("filename", "attachment", "expected"),
    [
        ("a.txt", False, 'inline; filename="a.txt"'),
        ("a.txt", True, 'attachment; filename="a.txt"'),
        ('say "hi".txt', True, 'attachment; filename="say \\"hi\\".txt"'),
        ("back\\slash", True, 'attachment; filename="back\\\\slash"'),
        ("a\r\nSet-Cookie: x=1", True, 'attachment; filename="aSet-Cookie: x=1"'),
        ("", True, "attachment"),
        # Outside printable ASCII: a readable fallback, the exact name in filename* (RFC 8187).
        (
            "résumé.txt",
            True,
            "attachment; filename=\"resume.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt",
        ),
        (
            "Größe €.txt",
            False,
            "inline; filename=\"Gro_e _.txt\"; filename*=UTF-8''Gr%C3%B6%C3%9Fe%20%E2%82%AC.txt",
        ),
        ("你好.txt", False, "inline; filename=\"__.txt\"; filename*=UTF-8''%E4%BD%A0%E5%A5%BD.txt"),
        ("日本.pdf", False, "inline; filename=\"__.pdf\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.pdf"),
        ("e\u0301.txt", False, "inline; filename=\"e.txt\"; filename*=UTF-8''e%CC%81.txt"),
        ("\u0301.txt", False, "inline; filename=\"download.txt\"; filename*=UTF-8''%CC%81.txt"),
        (
            "ﬁle½.txt",
            False,
            "inline; filename=\"file1_2.txt\"; filename*=UTF-8''%EF%AC%81le%C2%BD.txt",
        ),
        ("a.日本", False, "inline; filename=\"a.__\"; filename*=UTF-8''a.%E6%97%A5%E6%9C%AC"),
        (
            'é "q" \\.txt',  # quoted-string escapes (RFC 9110 section 5.6.4)
            False,
            'inline; filename="e \\"q\\" \\\\.txt"; filename*=UTF-8\'\'%C3%A9%20%22q%22%20%5C.txt',
        ),
        # Bytes that are not UTF-8, as os.listdir gives them (surrogate escapes).
        (
            "caf\udce9.txt",
            True,
            "attachment; filename=\"caf_.txt\"; filename*=UTF-8''caf%EF%BF%BD.txt",
        ),
        (
            "tab\there\x7f.txt",
            True,
            "attachment; filename=\"tab_here_.txt\"; filename*=UTF-8''tab%09here%7F.txt",
        ),
    ],
)
def test_content_disposition(filename: str, attachment: bool, expected: str) -> None:
    assert content_disposition(filename, as_attachment=attachment) == expected


@pytest.mark.parametrize(
    ("content_type", "charset", "expected"),
    [
        ("text/plain", "utf-8", "text/plain; charset=utf-8"),
        ("text/html", "utf-8", "text/html; charset=utf-8"),
        ("text/csv", "utf-8", "text/csv; charset=utf-8"),
        ("text/javascript", "utf-8", "text/javascript; charset=utf-8"),
        ("application/javascript", "utf-8", "application/javascript; charset=utf-8"),
        ("application/json", "utf-8", "application/json; charset=utf-8"),
        ("application/xml", "utf-8", "application/xml; charset=utf-8"),
        ("text/xml", "utf-8", "text/xml; charset=utf-8"),
        ("image/svg+xml", "utf-8", "image/svg+xml; charset=utf-8"),
        ("application/manifest+json", "utf-8", "application/manifest+json; charset=utf-8"),
        ("application/ld+json", "utf-8", "application/ld+json; charset=utf-8"),
        ("application/atom+xml", "utf-8", "application/atom+xml; charset=utf-8"),
        ("Text/Plain", "utf-8", "Text/Plain; charset=utf-8"),
        ("text/plain; format=flowed", "utf-8", "text/plain; format=flowed; charset=utf-8"),
        ("text/plain;", "utf-8", "text/plain; charset=utf-8"),
        ("text/plain; charset=iso-8859-1", "utf-8", "text/plain; charset=iso-8859-1"),  # kept
        ("text/plain;CHARSET=latin1", "utf-8", "text/plain;CHARSET=latin1"),
        ("text/plain", "iso-8859-1", "text/plain; charset=iso-8859-1"),
        ("text/plain", None, "text/plain"),  # off
        ("text/plain", "", "text/plain"),
        ("image/png", "utf-8", "image/png"),  # not text
        ("application/octet-stream", "utf-8", "application/octet-stream"),
        ("application/pdf", "utf-8", "application/pdf"),
        ("application/gzip", "utf-8", "application/gzip"),
        ("application/jsonx", "utf-8", "application/jsonx"),
    ],
)
def test_with_charset(content_type: str, charset: str | None, expected: str) -> None:
    assert with_charset(content_type, charset) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", "text/plain; charset=utf-8"),
        ("a.json", "application/json; charset=utf-8"),
        ("a.svg", "image/svg+xml; charset=utf-8"),
        ("a.png", "image/png"),
        ("a.txt.gz", "application/gzip"),  # served as what it is: no charset
    ],
)
def test_guessed_types_get_a_charset(name: str, expected: str) -> None:
    assert with_charset(guess_content_type(name), "utf-8") == expected
