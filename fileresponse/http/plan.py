"""The response plan: status, headers and body layout of a file response.

:func:`plan_response` is the pure core of every file response: given the
request method and headers and what is known of the file, it decides the
status, the protocol headers and which bytes go out. Adapters (the Django
response, the ASGI handler, WSGI) only carry the plan out.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from .conditional import Outcome, Validators, evaluate_preconditions, if_range_allows
from .ranges import ByteRange, MalformedRange, RangeNotSatisfiable, parse_range_header
from .validators import ETag, format_http_date

__all__ = ["Representation", "ResponsePlan", "Segment", "plan_response"]

#: A piece of the body: literal bytes (multipart framing) or a range of the file.
Segment = bytes | ByteRange


@dataclass(frozen=True, slots=True)
class Representation:
    """What the server knows of the file before sending it."""

    size: int
    content_type: str
    etag: ETag | None = None
    last_modified: int | None = None

    @property
    def validators(self) -> Validators:
        return Validators(etag=self.etag, last_modified=self.last_modified)


@dataclass(frozen=True, slots=True)
class ResponsePlan:
    """Status, protocol headers and body layout of one response."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: tuple[Segment, ...] = ()

    @property
    def content_length(self) -> int:
        return sum(
            len(segment) if isinstance(segment, bytes) else segment.length for segment in self.body
        )

    @property
    def is_whole_file(self) -> bool:
        """A ``200`` whose body is exactly the file, start to end."""
        return (
            self.status == 200
            and len(self.body) == 1
            and isinstance(self.body[0], ByteRange)
            and self.body[0].first == 0
        )


def plan_response(
    method: str,
    headers: Mapping[str, str],
    representation: Representation,
    *,
    max_ranges: int = 16,
    boundary: str | None = None,
) -> ResponsePlan:
    """Plan the response to a request for a file.

    ``headers`` maps lower-case request header names to values. ``boundary``
    fixes the multipart boundary (tests); by default it is random.
    """
    validators: list[tuple[str, str]] = []
    if representation.etag is not None:
        validators.append(("ETag", str(representation.etag)))
    if representation.last_modified is not None:
        validators.append(("Last-Modified", format_http_date(representation.last_modified)))

    outcome = evaluate_preconditions(method, headers, representation.validators)
    if outcome is Outcome.NOT_MODIFIED:
        # RFC 9110 section 15.4.5: a 304 carries the ETag, not the other
        # representation metadata (Last-Modified only without an ETag).
        return ResponsePlan(304, tuple(validators[:1]))
    if outcome is Outcome.PRECONDITION_FAILED:
        return ResponsePlan(412, (("Content-Length", "0"),))

    size = representation.size
    common = (("Accept-Ranges", "bytes"), *validators)
    whole = (ByteRange(0, size - 1),) if size else ()
    send_body = method != "HEAD"

    ranges: list[ByteRange] | None = None
    range_header = headers.get("range")
    # RFC 9110 section 14.2: Range is defined for GET only; HEAD and other
    # methods ignore it, and so does a failed If-Range (section 13.2.2 step 5).
    if (
        range_header is not None
        and method == "GET"
        and if_range_allows(headers, representation.validators)
    ):
        try:
            ranges = parse_range_header(range_header, size, max_ranges=max_ranges)
        except MalformedRange:
            ranges = None
        except RangeNotSatisfiable:
            return ResponsePlan(
                416,
                (("Content-Range", f"bytes */{size}"), ("Content-Length", "0"), *common),
            )

    whole_file = ResponsePlan(
        200,
        (("Content-Type", representation.content_type), ("Content-Length", str(size)), *common),
        whole if send_body else (),
    )
    if ranges is None:
        return whole_file
    if len(ranges) == 1:
        # Section 15.3.7.1, also for a range that covers the whole file
        # (bytes=0-): download managers probe resumability so, as nginx answers.
        (only,) = ranges
        return ResponsePlan(
            206,
            (
                ("Content-Type", representation.content_type),
                ("Content-Range", only.content_range(size)),
                ("Content-Length", str(only.length)),
                *common,
            ),
            (only,),
        )
    multipart = _multipart(ranges, representation, boundary or secrets.token_hex(16), common)
    # Section 14.2 lets a server ignore Range: a multipart body larger than
    # the file is worse than the file.
    return multipart if multipart.content_length <= size else whole_file


def _multipart(
    ranges: list[ByteRange],
    representation: Representation,
    boundary: str,
    common: tuple[tuple[str, str], ...],
) -> ResponsePlan:
    """A ``multipart/byteranges`` plan (RFC 9110 section 14.6), parts in the order of ``ranges``.

    Each part carries its own ``Content-Type`` and ``Content-Range``.
    """
    size = representation.size
    body: list[Segment] = []
    for byte_range in ranges:
        body.append(
            (
                f"--{boundary}\r\n"
                f"Content-Type: {representation.content_type}\r\n"
                f"Content-Range: {byte_range.content_range(size)}\r\n\r\n"
            ).encode("latin-1")
        )
        body.append(byte_range)
        body.append(b"\r\n")
    body.append(f"--{boundary}--\r\n".encode("ascii"))
    plan_body = tuple(body)
    length = ResponsePlan(206, (), plan_body).content_length
    return ResponsePlan(
        206,
        (
            ("Content-Type", f"multipart/byteranges; boundary={boundary}"),
            ("Content-Length", str(length)),
            *common,
        ),
        plan_body,
    )
