"""A deliberately small HTTP/1.1 client for the live tests.

Ordinary clients normalise request targets (``..``, percent-escapes) and hide what
went over the wire (a body after ``HEAD`` or ``304``). This one sends the target
bytes exactly as given, with ``Connection: close``, and keeps every byte of the
answer, so the tests can assert on what the server really sent.
"""

import asyncio
import contextlib
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

READ_TIMEOUT = 30.0


class ProtocolError(AssertionError):
    """The server's answer is not valid HTTP/1.1."""


@dataclass(frozen=True)
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    """The decoded payload (chunked transfer coding removed)."""
    wire_body: bytes
    """Every byte the server sent after the header block."""

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or None; several are joined."""
        values = self.header_values(name)
        return ", ".join(values) if values else None

    def header_values(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self.headers if key.lower() == lowered]

    def header_map(self, *, exclude: Iterable[str] = ()) -> dict[str, str]:
        """Headers as a dict with lower-case names, without the ``exclude`` names."""
        excluded = {name.lower() for name in exclude}
        names = sorted({key.lower() for key, _ in self.headers} - excluded)
        return {name: self.header(name) or "" for name in names}


def build_request(
    method: str,
    target: str | bytes,
    host: str,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """The bytes of a request; ``target`` is sent as is (str targets as latin-1)."""
    raw_target = target if isinstance(target, bytes) else target.encode("latin-1")
    lines = [method.encode("ascii") + b" " + raw_target + b" HTTP/1.1"]
    fields = {"Host": host, "Connection": "close", "User-Agent": "fileresponse-tests"}
    fields.update(headers or {})
    lines += [f"{name}: {value}".encode("latin-1") for name, value in fields.items()]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def parse_response(raw: bytes, method: str) -> RawResponse:
    """Parse a complete response read up to the server's close of the connection."""
    head, separator, wire_body = raw.partition(b"\r\n\r\n")
    if not separator:
        raise ProtocolError(f"no end of header block in {raw[:200]!r}")
    status, reason, headers = _parse_head(head)
    return _decode_body(RawResponse(status, reason, headers, wire_body, wire_body), method)


def _parse_head(head: bytes) -> tuple[int, str, list[tuple[str, str]]]:
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    status_text, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not status_text.isdigit():
        raise ProtocolError(f"bad status line {status_line!r}")
    headers = []
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise ProtocolError(f"bad header line {line!r}")
        headers.append((name.strip(), value.strip()))
    return int(status_text), reason, headers


def _has_no_body(method: str, status: int) -> bool:
    """RFC 9112 section 6.3: responses that end with their header block."""
    return method == "HEAD" or status in {204, 304} or status < 200


def _decode_body(response: RawResponse, method: str) -> RawResponse:
    if _has_no_body(method, response.status):
        return response
    if "chunked" in (response.header("Transfer-Encoding") or "").lower():
        body = _decode_chunked(response.wire_body)
        return RawResponse(
            response.status, response.reason, response.headers, body, response.wire_body
        )
    length = response.header("Content-Length")
    if length is not None and int(length) != len(response.wire_body):
        raise ProtocolError(
            f"Content-Length {length} but {len(response.wire_body)} body bytes were sent"
        )
    return response


def _decode_chunked(data: bytes) -> bytes:
    body = bytearray()
    position = 0
    while True:
        line_end = data.index(b"\r\n", position)
        size = int(data[position:line_end].split(b";")[0], 16)
        position = line_end + 2
        if size == 0:
            return bytes(body)
        body += data[position : position + size]
        if data[position + size : position + size + 2] != b"\r\n":
            raise ProtocolError("chunk not followed by CRLF")
        position += size + 2


def request(
    host: str,
    port: int,
    method: str,
    target: str | bytes,
    headers: Mapping[str, str] | None = None,
    timeout: float = READ_TIMEOUT,
) -> RawResponse:
    """Send one request on a fresh connection and read the answer until the server closes."""
    payload = build_request(method, target, f"{host}:{port}", headers)
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.sendall(payload)
        chunks = []
        while chunk := connection.recv(1 << 20):
            chunks.append(chunk)
    return parse_response(b"".join(chunks), method)


class PersistentConnection:
    """One keep-alive connection; each response is read by its own framing.

    Shows framing errors that ``Connection: close`` hides: body bytes after a
    ``HEAD`` or ``304``, a ``Content-Length`` that does not match the body.
    """

    def __init__(self, host: str, port: int, timeout: float = READ_TIMEOUT) -> None:
        self.host, self.port = host, port
        self._socket = socket.create_connection((host, port), timeout=timeout)
        self._buffer = bytearray()

    def __enter__(self) -> "PersistentConnection":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._socket.close()

    def request(
        self, method: str, target: str | bytes, headers: Mapping[str, str] | None = None
    ) -> RawResponse:
        fields = {"Connection": "keep-alive", **(headers or {})}
        self.send(build_request(method, target, f"{self.host}:{self.port}", fields))
        return self.read_response(method)

    def send(self, payload: bytes) -> None:
        """Write raw bytes: several requests at once to pipeline them."""
        self._socket.sendall(payload)

    def read_response(self, method: str) -> RawResponse:
        """Read the next response (to a request of ``method``) by its framing."""
        status, reason, response_headers = _parse_head(self._read_until(b"\r\n\r\n"))
        response = RawResponse(status, reason, response_headers, b"", b"")
        if _has_no_body(method, status):
            return response
        if "chunked" in (response.header("Transfer-Encoding") or "").lower():
            wire_body = self._read_chunked()
            body = _decode_chunked(wire_body)
        else:
            length = response.header("Content-Length")
            if length is None:
                raise ProtocolError("a keep-alive response without framing")
            body = wire_body = self._read_exactly(int(length))
        return RawResponse(status, reason, response_headers, body, wire_body)

    def pending(self, wait: float = 0.2) -> bytes:
        """Bytes the server sent beyond the responses read so far."""
        self._socket.settimeout(wait)
        with contextlib.suppress(TimeoutError):
            self._buffer += self._socket.recv(1 << 16)
        return bytes(self._buffer)

    def _fill(self) -> None:
        chunk = self._socket.recv(1 << 20)
        if not chunk:
            raise ProtocolError("connection closed in the middle of a response")
        self._buffer += chunk

    def _read_until(self, marker: bytes) -> bytes:
        while (end := self._buffer.find(marker)) < 0:
            self._fill()
        data = bytes(self._buffer[:end])
        del self._buffer[: end + len(marker)]
        return data

    def _read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _read_chunked(self) -> bytes:
        wire = bytearray()
        while True:
            line = self._read_until(b"\r\n")
            wire += line + b"\r\n"
            size = int(line.split(b";")[0], 16)
            if size == 0:
                wire += self._read_until(b"\r\n") + b"\r\n"
                return bytes(wire)
            wire += self._read_exactly(size + 2)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def arequest(
    host: str,
    port: int,
    method: str,
    target: str | bytes,
    headers: Mapping[str, str] | None = None,
) -> RawResponse:
    """``request`` over asyncio streams."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(build_request(method, target, f"{host}:{port}", headers))
        await writer.drain()
        raw = await reader.read()
    finally:
        await _close(writer)
    return parse_response(raw, method)


async def adownload_and_discard(
    host: str, port: int, target: str, headers: Mapping[str, str] | None = None
) -> int:
    """GET ``target``, read the whole answer without keeping it; the number of bytes read."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(build_request("GET", target, f"{host}:{port}", headers))
        await writer.drain()
        received = 0
        while chunk := await reader.read(1 << 18):
            received += len(chunk)
        return received
    finally:
        await _close(writer)


async def aabort_download(
    host: str,
    port: int,
    target: str,
    headers: Mapping[str, str] | None = None,
    read_bytes: int = 64 * 1024,
) -> int:
    """GET ``target``, read about ``read_bytes`` of the answer, then drop the connection.

    Closing with unread data in the receive buffer makes the kernel answer with a
    reset, as a browser does when a user cancels a download.
    """
    reader, writer = await asyncio.open_connection(host, port)
    received = 0
    try:
        writer.write(build_request("GET", target, f"{host}:{port}", headers))
        await writer.drain()
        while received < read_bytes:
            chunk = await reader.read(read_bytes - received)
            if not chunk:
                break
            received += len(chunk)
    finally:
        await _close(writer)
    return received
