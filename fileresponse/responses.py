"""The async file response: one class for ASGI (patched or stock handler) and WSGI."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any

from django.http import StreamingHttpResponse

from .asgi_types import (
    PATHSEND,
    ZEROCOPYSEND,
    ResponseBody,
    ResponsePathsend,
    ResponseStart,
    ResponseZerocopysend,
    Send,
)
from .conf import get_config
from .http.headers import content_disposition, guess_content_type, with_charset
from .http.plan import Representation, ResponsePlan, plan_response
from .http.ranges import ByteRange
from .http.validators import ETag, last_modified_of
from .sources import Source, SourceStat, as_source
from .sources.filesystem import FilesystemSource

if TYPE_CHECKING:
    from django.http import HttpRequest

__all__ = ["AsyncFileResponse"]

_NO_BODY_STATUSES = (304, 412, 416)
_END_OF_BODY: ResponseBody = {"type": "http.response.body", "body": b"", "more_body": False}


@asynccontextmanager
async def aclosing(iterator: AsyncIterator[bytes]) -> AsyncGenerator[AsyncIterator[bytes]]:
    """Close an async iterator when the block ends (if it can be closed)."""
    try:
        yield iterator
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


#: The request headers a response plan reads (fileresponse.http.plan), as Django names them.
_PLANNING_HEADERS = tuple(
    (name, "HTTP_" + name.upper().replace("-", "_"))
    for name in (
        "range",
        "if-range",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
    )
)


def _planning_headers(request: HttpRequest) -> dict[str, str]:
    """Those headers of ``request`` that are present, by lower-case name (from ``META``:
    cheaper than building ``request.headers``)."""
    meta = request.META
    return {name: meta[key] for name, key in _PLANNING_HEADERS if key in meta}


class AsyncFileResponse(StreamingHttpResponse):
    """Stream a file with full HTTP semantics, without blocking the event loop.

    ``file`` is a path, an open binary file or a
    :class:`~fileresponse.sources.Source`. With ``request``, the response
    answers ``Range`` (``206``, ``multipart/byteranges``, ``416``) and
    conditional requests (``304``, ``412``) per RFC 9110; HEAD gets the
    headers without a body.

    In async views, build it with ``await AsyncFileResponse.acreate(...)``,
    which stats the file off the event loop; the constructor stats it in the
    calling thread (fine in sync views). ``await response.aprepare()`` then
    lets a remote source start its first read while a failure can still be
    answered with an error status.

    How the bytes go out:

    - under :class:`fileresponse.handlers.AsyncFileASGIHandler` the response
      sends itself: a local file by ``http.response.zerocopysend`` from the
      descriptor that was stat'ed when the server offers it (the library's
      worker, :mod:`fileresponse.workers`), else by ``http.response.pathsend``
      when it cannot change under its name (``FilesystemSource(immutable=True)``:
      derivatives) and the server offers that, else in chunks read from the
      descriptor;
    - under Django's stock ``ASGIHandler``, as an async iterator;
    - under WSGI, as a sync iterator, or ``wsgi.file_wrapper`` (``sendfile``)
      for a whole local file.

    Memory per response is about two chunks (``CHUNK_SIZE``), whatever the
    file size.
    """

    # Set by Django's StreamingHttpResponse (not in its type stubs).
    _iterator: Iterator[bytes] | AsyncIterator[bytes]
    _resource_closers: list[Callable[[], object]]
    #: The ASGI extensions of the connection, set by AsyncFileASGIHandler.
    asgi_extensions: Mapping[str, Any] = MappingProxyType({})

    def __init__(
        self,
        file: str | os.PathLike[str] | IO[bytes] | Source,
        request: HttpRequest | None = None,
        *,
        as_attachment: bool = False,
        filename: str | None = None,
        content_type: str | None = None,
        cache_control: str | None = None,
        chunk_size: int | None = None,
        max_ranges: int | None = None,
        stat: SourceStat | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        config = get_config(
            CHUNK_SIZE=chunk_size, CACHE_CONTROL=cache_control, MAX_RANGES=max_ranges
        )
        source = as_source(file, filename)
        try:
            stat = source.stat() if stat is None else stat
        except BaseException:
            source.close()
            raise
        super().__init__(headers=headers)
        self._source = source
        self._stat = stat
        self._file_to_stream: IO[bytes] | None = None
        self.block_size = self._chunk_size = config.CHUNK_SIZE
        # Async reads of a source that buffers more than a chunk anyway (MinIO) come in
        # its own pieces: splitting them only adds messages.
        self._async_chunk_size = max(config.CHUNK_SIZE, getattr(source, "min_chunk_size", 0))
        self._resource_closers.append(source.close)

        method = "GET" if request is None else (request.method or "GET")
        request_headers = {} if request is None else _planning_headers(request)
        name = filename or source.name
        representation = Representation(
            size=stat.size,
            content_type=with_charset(
                content_type or stat.content_type or guess_content_type(name), config.TEXT_CHARSET
            ),
            etag=None if stat.etag is None else ETag(stat.etag),
            last_modified=last_modified_of(stat.mtime, time.time()),
        )
        plan = plan_response(method, request_headers, representation, max_ranges=config.MAX_RANGES)
        self._plan = plan
        self.status_code = plan.status
        if plan.status in _NO_BODY_STATUSES:
            del self.headers["Content-Type"]
        for header, value in plan.headers:
            self.headers[header] = value
        if plan.status in (200, 206) and (as_attachment or name):
            self.headers.setdefault(
                "Content-Disposition", content_disposition(name, as_attachment=as_attachment)
            )
        if config.CACHE_CONTROL and plan.status in (200, 206, 304):
            self.headers.setdefault("Cache-Control", config.CACHE_CONTROL)

        # Django's middleware (GZip, ...) wraps streaming_content according
        # to is_async: async under ASGI, sync under WSGI, so that a wrapped
        # body is consumed without Django's sync/async conversion warnings.
        under_asgi = request is not None and hasattr(request, "scope")
        self.streaming_content = self._aiter_body() if under_asgi else self._iter_body()
        self._body_iterator = self._iterator
        if not plan.body:
            source.close()

    @classmethod
    async def acreate(
        cls,
        file: str | os.PathLike[str] | IO[bytes] | Source,
        request: HttpRequest | None = None,
        **kwargs: Any,
    ) -> AsyncFileResponse:
        """Build the response in async code: the stat runs off the event loop."""
        source = as_source(file, kwargs.get("filename"))
        try:
            stat = await source.astat()
        except BaseException:
            source.close()
            raise
        return cls(source, request, stat=stat, **kwargs)

    async def aprepare(self) -> None:
        """Let the source start reading the first range now, before the response is returned.

        A remote source (:class:`~fileresponse.sources.minio.MinioSource`)
        opens its GET here, so that a storage that does not answer is still a
        ``503`` and not a response cut short; a no-op for local sources and
        for responses without a body. On failure the source is closed.
        """
        first = next((part for part in self._plan.body if isinstance(part, ByteRange)), None)
        if first is None:
            return
        try:
            await self._source.aprepare(first.first, first.length)
        except BaseException:
            self._source.close()
            raise

    # -- the body -----------------------------------------------------------

    @property
    def plan(self) -> ResponsePlan:
        """The status, headers and body layout decided for this request."""
        return self._plan

    @property
    def streams_itself(self) -> bool:
        """False once a middleware has replaced ``streaming_content``."""
        return self._iterator is self._body_iterator

    def _iter_body(self) -> Iterator[bytes]:
        for segment in self._plan.body:
            if isinstance(segment, bytes):
                yield segment
            else:
                yield from self._source.iter_range(segment.first, segment.length, self._chunk_size)

    async def _aiter_body(self) -> AsyncIterator[bytes]:
        try:
            for segment in self._plan.body:
                if isinstance(segment, bytes):
                    yield segment
                    continue
                chunks = self._source.aiter_range(
                    segment.first, segment.length, self._async_chunk_size
                )
                async with aclosing(chunks):
                    async for chunk in chunks:
                        yield chunk
        finally:
            # Release the file at once, disconnect included: Django 5.2's
            # handler does not call close() on a cancelled response.
            self._source.close()

    def __iter__(self) -> Iterator[bytes]:
        """Sync iteration for WSGI servers."""
        if self.streams_itself:
            return self._iter_body()
        return super().__iter__()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Async iteration for Django's stock ``ASGIHandler``, without its sync-iterator warning."""
        if not self.streams_itself:
            async for part in super().__aiter__():
                yield part
            return
        async with aclosing(self._aiter_body()) as body:
            async for chunk in body:
                yield chunk

    @property
    def file_to_stream(self) -> IO[bytes] | None:
        """The whole local file for ``wsgi.file_wrapper`` (``sendfile`` under WSGI).

        Made on first access, so ASGI responses never pay for it.
        """
        source = self._source
        if not self._plan.is_whole_file or not isinstance(source, FilesystemSource):
            return None
        if self._file_to_stream is None:
            fd = source.file_descriptor
            if fd is None:
                return None
            # The WSGIHandler replaces close() by response.close(), which
            # closes the source; the file object must not close the descriptor.
            self._file_to_stream = os.fdopen(fd, "rb", closefd=False)
        return self._file_to_stream

    # -- sending over ASGI (AsyncFileASGIHandler) ---------------------------

    async def send_asgi(self, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        """Send the whole response: start, then the body by the cheapest way the server offers.

        ``http.response.zerocopysend`` (the server sends from the descriptor
        that was stat'ed, ``sendfile(2)``: :mod:`fileresponse.workers`), else
        ``http.response.pathsend`` for a whole file that cannot change under
        its name, else chunks read here.
        """
        start: ResponseStart = {
            "type": "http.response.start",
            "status": self.status_code,
            "headers": headers,
        }
        await send(start)
        if not self._plan.body:
            await send(_END_OF_BODY)
            return
        extensions = self.asgi_extensions
        if (
            ZEROCOPYSEND in extensions
            and isinstance(self._source, FilesystemSource)
            and self._plan.content_length > self._chunk_size
        ):
            # Above a chunk: a body of one chunk is one read on the loop, cheaper
            # than the server's duplicate socket and sendfile (measured on 4 KiB).
            await self._send_zero_copy(send, self._source)
            return
        path = self._stat.path
        if path and self._plan.is_whole_file and PATHSEND in extensions:
            # The server reads the file by name, later (zero-copy where it
            # can): only for files whose name can never show other bytes
            # (``stat.path`` is set for those alone); everything else is sent
            # from the descriptor that was stat'ed.
            self._source.close()
            pathsend: ResponsePathsend = {"type": PATHSEND, "path": path}
            await send(pathsend)
            return
        async with aclosing(self._aiter_body()) as body:
            async for chunk in body:
                message: ResponseBody = {
                    "type": "http.response.body",
                    "body": chunk,
                    "more_body": True,
                }
                await send(message)
        await send(_END_OF_BODY)

    async def _send_zero_copy(self, send: Send, source: FilesystemSource) -> None:
        """Each range as ``http.response.zerocopysend`` of the open descriptor; parts between."""
        fd = source.file_descriptor
        if fd is None:
            raise RuntimeError("zero-copy send of a closed source")
        try:
            # The extension names a file object; it must not close the source's descriptor.
            with os.fdopen(fd, "rb", buffering=0, closefd=False) as file:
                for segment in self._plan.body:
                    if isinstance(segment, bytes):
                        body: ResponseBody = {
                            "type": "http.response.body",
                            "body": segment,
                            "more_body": True,
                        }
                        await send(body)
                        continue
                    zero_copy: ResponseZerocopysend = {
                        "type": ZEROCOPYSEND,
                        "file": file,
                        "offset": segment.first,
                        "count": segment.length,
                        "more_body": True,
                    }
                    await send(zero_copy)
            await send(_END_OF_BODY)
        finally:
            source.close()
