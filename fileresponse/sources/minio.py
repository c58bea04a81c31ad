"""Objects in MinIO (or any S3-compatible store) of a :class:`~fileresponse.storage.MinioStorage`.

The stat is one HEAD request; each byte range is one ranged GET (``If-Match``
the stat's ETag, so a response never mixes two versions), read in chunks as
the client takes them: memory per response is about a chunk plus aiohttp's
read buffer, whatever the object size. A closed or cancelled response closes
its GET's connection at once.

Under ASGI the requests go through the event loop's pooled ``miniopy-async``
client, under WSGI through the process's ``minio`` client. Errors:
:class:`~fileresponse.exceptions.SourceNotFound` for a missing object,
:class:`~fileresponse.exceptions.SourceUnavailable` when the storage does not
answer (a ``503`` before the response starts; after the first byte the
response is cut short), :class:`~fileresponse.exceptions.StorageError` for a
refused configuration.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Protocol

from fileresponse.conf import MinioConfig
from fileresponse.exceptions import SourceUnavailable
from fileresponse.storage.minio.clients import READ_BUFFER_SIZE, object_key
from fileresponse.storage.minio.errors import translate_async_error, translate_sync_error
from fileresponse.storage.minio.objects import aopen_range, astat_object, open_range, stat_object

from .base import SourceStat, StatOnce

if TYPE_CHECKING:
    import aiohttp

__all__ = ["MinioSource"]

logger = logging.getLogger("fileresponse")


class _Configured(Protocol):
    """What a MinioSource needs of its storage (a MinioStorage): the configuration."""

    @property
    def config(self) -> MinioConfig: ...


class MinioSource(StatOnce):
    """One object of a MinioStorage, named by a URL path under the storage's prefix.

    The path is checked at once (``..``, absolute paths, NUL bytes and
    backslashes raise :class:`~fileresponse.exceptions.UnsafePath`), so no
    key outside ``PREFIX`` can be reached.
    """

    #: The client reads this much from the socket at a time anyway: a response asks for
    #: chunks of at least this size (fewer ASGI messages and writes, the same memory).
    min_chunk_size = READ_BUFFER_SIZE

    def __init__(self, storage: _Configured, relative_path: str) -> None:
        self._config = storage.config
        self._key = object_key(self._config.PREFIX, relative_path)
        self._prepared: tuple[int, int, aiohttp.ClientResponse] | None = None
        self._closed = False

    @property
    def name(self) -> str:
        return posixpath.basename(self._key)

    @property
    def key(self) -> str:
        return self._key

    def __repr__(self) -> str:
        return f"<MinioSource {self._config.BUCKET}/{self._key}>"

    # -- stat -----------------------------------------------------------------

    def _stat_now(self) -> SourceStat:
        return stat_object(self._config, self._key)

    async def _astat_now(self) -> SourceStat:
        return await astat_object(self._config, self._key)

    def _etag(self) -> str | None:
        return None if self._stat is None else self._stat.etag

    # -- reading (async) ------------------------------------------------------

    async def aprepare(self, start: int, length: int) -> None:
        """Start the GET of the first range now, while errors can still be a ``503``.

        :meth:`fileresponse.responses.AsyncFileResponse.aprepare` calls it
        before the view returns the response; :meth:`aiter_range` then reads
        that GET.
        """
        if length > 0 and self._prepared is None:
            response = await aopen_range(self._config, self._key, start, length, self._etag())
            self._prepared = (start, length, response)

    async def aiter_range(self, start: int, length: int, chunk_size: int) -> AsyncIterator[bytes]:
        if length <= 0:
            return
        if self._closed:
            raise SourceUnavailable(f"{self!r} is closed")
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared[:2] == (start, length):
            response = prepared[2]
        else:
            if prepared is not None:
                prepared[2].close()
            response = await aopen_range(self._config, self._key, start, length, self._etag())
        content = response.content
        # Chunks of a READ_BUFFER_SIZE or more: each piece as it came from the socket
        # (readchunk, at most a socket read), no join, no buffer above malloc's mmap
        # threshold (page faults). Smaller chunks: what has arrived, up to a chunk
        # (small pieces joined, large ones sliced); taking whole pieces there costs no
        # less CPU and lets aiohttp buffer one piece more per download.
        whole_pieces = chunk_size >= READ_BUFFER_SIZE
        sent = 0  # bytes taken from the connection
        try:
            while sent < length:
                try:
                    if whole_pieces:
                        data, end_of_http_chunk = await content.readchunk()
                        if not data and end_of_http_chunk:
                            continue  # chunked transfer coding: not the end of the body
                    else:
                        data = await content.read(min(chunk_size, length - sent))
                    if not data:
                        raise asyncio.IncompleteReadError(b"", length - sent)
                except Exception as error:
                    raise self._cut_short(error, sent, length) from error
                if len(data) > length - sent:  # a server that sent more than asked
                    data = data[: length - sent]
                sent += len(data)
                if len(data) <= chunk_size:
                    yield data
                else:
                    for offset in range(0, len(data), chunk_size):
                        yield data[offset : offset + chunk_size]
        finally:
            if sent == length:
                response.release()  # the connection goes back to the pool
            else:
                response.close()  # unread bytes: the connection cannot be reused

    def _cut_short(self, error: Exception, sent: int, length: int) -> Exception:
        translated: Exception | None
        if isinstance(error, asyncio.IncompleteReadError):
            translated = SourceUnavailable("the storage closed the stream")
        else:
            translated = translate_async_error(self._config, error)
        logger.error(
            "%r: storage stream failed after %d of %d bytes, response cut short: %s",
            self,
            sent,
            length,
            translated or error,
        )
        return translated or error

    # -- reading (sync) -------------------------------------------------------

    def iter_range(self, start: int, length: int, chunk_size: int) -> Iterator[bytes]:
        if length <= 0:
            return
        if self._closed:
            raise SourceUnavailable(f"{self!r} is closed")
        response = open_range(self._config, self._key, start, length, self._etag())
        sent = 0
        try:
            while sent < length:
                try:
                    data = response.read(min(chunk_size, length - sent))
                except Exception as error:
                    translated = translate_sync_error(self._config, error) or error
                    logger.error(
                        "%r: storage stream failed after %d of %d bytes, response cut short: %s",
                        self,
                        sent,
                        length,
                        translated,
                    )
                    raise translated from error
                if not data:
                    raise SourceUnavailable(f"{self!r}: the storage closed the stream")
                sent += len(data)
                yield data
        finally:
            if sent < length:
                response.close()  # unread bytes: the connection cannot be reused
            response.release_conn()

    # -- closing ----------------------------------------------------------------

    def close(self) -> None:
        """Release a prepared GET that was not read; later reads fail."""
        self._closed = True
        prepared, self._prepared = self._prepared, None
        if prepared is not None:
            prepared[2].close()
