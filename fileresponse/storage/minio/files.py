"""File objects for MinIO storages: an object read as a seekable file, and upload bodies.

:class:`ObjectReader` is what ``MinioStorage.open()`` returns (buffered): one
ranged GET at a time, ``If-Match`` the ETag of the stat it was opened with.
"""

from __future__ import annotations

import contextlib
import io
import mimetypes
from typing import IO, TYPE_CHECKING, Any

from django.core.files.base import File

from fileresponse.conf import MinioConfig
from fileresponse.exceptions import SourceUnavailable
from fileresponse.sources.base import SourceStat
from fileresponse.threads import in_thread

from .errors import translate_sync_error
from .objects import open_range

if TYPE_CHECKING:
    from urllib3 import BaseHTTPResponse

__all__ = [
    "UPLOAD_PART_SIZE",
    "ObjectReader",
    "ThreadedReader",
    "upload_body",
    "upload_content_type",
]

#: Part size of uploads of unknown length.
UPLOAD_PART_SIZE = 16 * 1024 * 1024


class ObjectReader(io.RawIOBase):
    """Reads an object through one ranged GET at a time; seeking starts a new GET lazily."""

    def __init__(self, config: MinioConfig, key: str, stat: SourceStat) -> None:
        super().__init__()
        self._config = config
        self._key = key
        self._stat = stat
        self._position = 0
        self._response: BaseHTTPResponse | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._stat.size}[whence]
        position = base + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        if position != self._position:
            self._drop_response()
            self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        remaining = self._stat.size - self._position
        if remaining <= 0:
            return 0
        if self._response is None:
            self._response = open_range(
                self._config, self._key, self._position, remaining, self._stat.etag
            )
        try:
            data = self._response.read(min(len(buffer), remaining))
        except Exception as error:
            self._drop_response()
            translated = translate_sync_error(self._config, error)
            if translated is None:
                raise
            raise translated from error
        if not data:
            self._drop_response()
            raise SourceUnavailable(f"object {self._key!r} ended early")
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _drop_response(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            response.close()
            response.release_conn()

    def close(self) -> None:
        self._drop_response()
        super().close()


class ThreadedReader:
    """A file whose ``read`` runs in the I/O threads (``miniopy-async`` awaits coroutines)."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    async def read(self, size: int = -1) -> bytes:
        return await in_thread(self._file.read, size)


def upload_body(content: File[Any]) -> tuple[IO[bytes], int]:
    """A binary stream of ``content`` from its start, and its length (``-1``: unknown)."""
    if hasattr(content, "seek"):
        with contextlib.suppress(OSError, ValueError):  # not seekable: upload what is left
            content.seek(0)
    sample = content.read(0)
    if isinstance(sample, str):
        text: str = content.read()
        encoded = text.encode("utf-8")
        return io.BytesIO(encoded), len(encoded)
    try:
        size = content.size
    except (AttributeError, OSError, TypeError):
        size = None
    return content, size if isinstance(size, int) else -1


def upload_content_type(name: str, content: object) -> str:
    """The content type ``content`` declares, else the one its name suggests."""
    declared = getattr(content, "content_type", None)
    if isinstance(declared, str) and declared:
        return declared
    return mimetypes.guess_type(name)[0] or "application/octet-stream"
