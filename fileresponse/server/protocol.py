"""uvicorn's httptools protocol, with files sent by the kernel and a time limit on request heads.

:class:`HttpToolsProtocol` is uvicorn's own (keep-alive, pipelining, flow
control, ``HEAD``, the access log are all its code), with two additions:

- every plain-text connection offers the ASGI extensions
  ``http.response.zerocopysend`` (bytes of an open file: a descriptor, an
  offset and a count) and ``http.response.pathsend`` (a whole file by
  name), sent with ``sendfile(2)`` (:mod:`.sendfile`). Over TLS the kernel
  cannot encrypt, so neither is offered and applications send their own
  bytes. Any ASGI application may use them; the library's responses do.
- a connection that has not sent a complete request head within
  ``header_timeout`` seconds (``FILERESPONSE_HEADER_TIMEOUT``, default 10,
  like nginx's ``client_header_timeout``) gets ``408`` and is closed, where
  stock uvicorn waits for ever (slowloris).

Use it with ``uvicorn.run(app, http=HttpToolsProtocol)``, ``python -m
fileresponse.server`` or ``gunicorn -k fileresponse.workers.UvicornWorker``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.utils import is_ssl

from fileresponse.asgi_types import PATHSEND, ZEROCOPYSEND

from .sendfile import send_file

__all__ = ["DEFAULT_HEADER_TIMEOUT", "HttpToolsProtocol", "header_timeout_from_environment"]

logger = logging.getLogger("fileresponse.server")

#: Seconds a client has to send a complete request head.
DEFAULT_HEADER_TIMEOUT = 10.0

_EXTENSIONS: dict[str, dict[object, object]] = {PATHSEND: {}, ZEROCOPYSEND: {}}
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 15\r\nconnection: close\r\n\r\nRequest Timeout"
)

Message = Mapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


def header_timeout_from_environment() -> float | None:
    """``FILERESPONSE_HEADER_TIMEOUT`` in seconds; ``0`` or ``off`` for no limit."""
    value = os.environ.get("FILERESPONSE_HEADER_TIMEOUT", "").strip()
    if not value:
        return DEFAULT_HEADER_TIMEOUT
    if value.lower() in ("0", "off", "none"):
        return None
    seconds = float(value)
    if seconds <= 0:
        raise ValueError(f"FILERESPONSE_HEADER_TIMEOUT must be positive, not {value!r}")
    return seconds


#: Read once per process, at the first connection (after ``python -m fileresponse.server``
#: has set it from ``--header-timeout``).
_environment_timeout = functools.cache(header_timeout_from_environment)


class HttpToolsProtocol(httptools_impl.HttpToolsProtocol):
    """uvicorn's httptools protocol with ``sendfile`` extensions and a header timeout."""

    #: Seconds for a complete request head, or ``None`` for no limit; a subclass may fix
    #: it. By default ``FILERESPONSE_HEADER_TIMEOUT`` (``DEFAULT_HEADER_TIMEOUT`` unset).
    header_timeout: ClassVar[float | str | None] = "environment"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        timeout = type(self).header_timeout
        self._head_timeout = _environment_timeout() if isinstance(timeout, str) else timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._sends_files = False

    # -- the connection -------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._sends_files = not is_ssl(transport) and transport.get_extra_info("socket") is not None
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._sends_files:
            self.scope["extensions"] = _EXTENSIONS
        if self._header_timer is None:
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: httptools_impl.RequestResponseCycle, app: Any) -> None:
        if self._sends_files:
            app = _FileSendingApp(app, cycle, self.loop)
        super()._start_asgi_task(cycle, app)

    # -- the header timeout ---------------------------------------------------

    def _arm_header_timer(self) -> None:
        if self._head_timeout is not None:
            self._header_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _head_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        cycle: httptools_impl.RequestResponseCycle | None = self.cycle
        if cycle is not None and not cycle.response_complete:
            # A pipelined head is late while a response is sent: close after that response.
            cycle.keep_alive = False
            return
        logger.info("request head not complete in %ss: connection closed", self._head_timeout)
        self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()


class _FileSendingApp:
    """The application of one request, with ``zerocopysend`` and ``pathsend`` done here."""

    __slots__ = ("app", "cycle", "loop")

    def __init__(
        self,
        app: App,
        cycle: httptools_impl.RequestResponseCycle,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.app = app
        self.cycle = cycle
        self.loop = loop

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        async def send_files_too(message: Message) -> None:
            kind = message["type"]
            if kind == ZEROCOPYSEND:
                await self._zero_copy(message, send)
            elif kind == PATHSEND:
                await self._path(message, send)
            else:
                await send(message)

        await self.app(scope, receive, send_files_too)

    def _check_body_expected(self, kind: str) -> None:
        cycle = self.cycle
        if not cycle.response_started:
            raise RuntimeError(f"Expected ASGI message 'http.response.start', but got '{kind}'.")
        if cycle.response_complete:
            raise RuntimeError(f"Unexpected ASGI message '{kind}' sent, after response completed.")

    async def _zero_copy(self, message: Message, send: Send) -> None:
        if self.cycle.disconnected:
            return
        self._check_body_expected(ZEROCOPYSEND)
        file = message["file"]
        fd = file if isinstance(file, int) else file.fileno()
        offset = message.get("offset")
        if offset is None:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        count = message.get("count")
        if count is None:
            count = os.fstat(fd).st_size - offset
        await self._send_range(fd, offset, count)
        if not message.get("more_body", False):
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _path(self, message: Message, send: Send) -> None:
        if self.cycle.disconnected:
            return
        self._check_body_expected(PATHSEND)
        try:
            fd = os.open(message["path"], os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            self._cut(f"pathsend cannot open {message['path']!r}: {error.strerror}")
            return
        try:
            cycle = self.cycle
            size = os.fstat(fd).st_size
            count = size if cycle.chunked_encoding else min(size, cycle.expected_content_length)
            await self._send_range(fd, 0, count)
        finally:
            os.close(fd)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_range(self, fd: int, offset: int, count: int) -> None:
        """``count`` bytes of the body, framed as the response head said; HEAD sends none."""
        cycle = self.cycle
        if cycle.disconnected or count <= 0 or cycle.scope["method"] == "HEAD":
            return
        transport = cycle.transport
        if transport.is_closing():
            # Closed between two messages (a reset seen by the transport first).
            cycle.disconnected = True
            return
        if cycle.chunked_encoding:
            transport.write(b"%x\r\n" % count)
        elif count > cycle.expected_content_length:
            raise RuntimeError("Response content longer than Content-Length")
        try:
            sent = await send_file(self.loop, transport, fd, offset, count)
        except OSError:
            # The client went away (EPIPE, ECONNRESET): like any write to a lost connection.
            cycle.disconnected = True
            transport.abort()
            return
        if sent < count:
            self._cut(f"the file ended {count - sent} bytes before the range sent")
            return
        if cycle.chunked_encoding:
            transport.write(b"\r\n")
        else:
            cycle.expected_content_length -= count

    def _cut(self, reason: str) -> None:
        """End a response that cannot be completed: the client sees it incomplete."""
        logger.warning("response cut, connection closed: %s", reason)
        self.cycle.disconnected = True
        self.cycle.transport.abort()
