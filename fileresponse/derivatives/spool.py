"""A copy of a remote source for one processing job, in bounded memory.

A worker process cannot read a source that is not a file on this machine
(MinIO, any other Storage), so the server copies it first: streamed in chunks
from the source as it was stat'ed (same version, at most the bytes of that
stat), kept in memory up to :data:`SPOOL_MEMORY_BYTES`, else written to a
temporary file whose path the job carries. The file is deleted when the job
ends, however it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fileresponse.sources.storage import storage_source
from fileresponse.threads import io_executor

from .exceptions import InsufficientStorage, SourceChanged, SourceTooLarge
from .keys import version_of

if TYPE_CHECKING:
    from django.core.files.storage import Storage

    from .originals import SourceState

__all__ = ["CHUNK_SIZE", "SPOOL_MEMORY_BYTES", "TEMP_PREFIX", "SpooledSource", "spooled_source"]

#: A copy up to this size stays in memory (and goes to the worker in the job).
SPOOL_MEMORY_BYTES = 1024 * 1024
#: The size of each read from the source.
CHUNK_SIZE = 256 * 1024
#: The names of the temporary files, in the system's temporary directory.
TEMP_PREFIX = "fileresponse-source-"

_FULL = (errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True, slots=True)
class SpooledSource:
    """The copy: ``data`` (at most :data:`SPOOL_MEMORY_BYTES`) or the ``path`` of a file."""

    data: bytes | None = None
    path: str | None = None

    def discard(self) -> None:
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


@contextlib.asynccontextmanager
async def spooled_source(
    storage: Storage, state: SourceState, max_bytes: int
) -> AsyncIterator[SpooledSource]:
    """Copy the source ``state`` names (in the I/O threads); delete the copy on leaving.

    Raises :class:`SourceTooLarge` beyond ``max_bytes``,
    :class:`SourceChanged` when the source changed since ``state`` was
    stat'ed, :class:`InsufficientStorage` when the temporary file finds
    no space, and the source's errors.
    """
    abandoned = threading.Event()
    copying = io_executor().submit(_copy, storage, state, max_bytes, abandoned)
    try:
        spool = await asyncio.wrap_future(copying)
    except asyncio.CancelledError:
        # The copy may be under way in its thread: stop it, and delete what it made.
        abandoned.set()
        copying.add_done_callback(_discard_result)
        raise
    try:
        yield spool
    finally:
        await _adiscard(spool)


async def _adiscard(spool: SpooledSource) -> None:
    """Delete the copy in the I/O threads; even when this task is cancelled meanwhile."""
    if spool.path is None:
        return
    try:
        deleting = io_executor().submit(spool.discard)
    except RuntimeError:  # the I/O threads are shut down: the interpreter is exiting
        spool.discard()
        return
    await asyncio.shield(asyncio.wrap_future(deleting))


def _discard_result(copying: Future[SpooledSource]) -> None:
    if not copying.cancelled() and copying.exception() is None:
        copying.result().discard()


class _Abandoned(Exception):
    """Nobody waits for the copy any more."""


def _copy(
    storage: Storage, state: SourceState, max_bytes: int, abandoned: threading.Event
) -> SpooledSource:
    """The copy, in the calling thread (blocking)."""
    source = storage_source(storage, state.name)
    try:
        stat = source.stat()
        if version_of(stat) != state.version:
            raise SourceChanged("the source changed since it was stat'ed; try again")
        if stat.size > max_bytes:
            raise SourceTooLarge(f"source too large: {stat.size} bytes (limit {max_bytes})")
        spool = _Spool(limit=stat.size)
        try:
            for chunk in source.iter_range(0, stat.size, CHUNK_SIZE):
                if abandoned.is_set():
                    raise _Abandoned
                spool.write(chunk)
            return spool.finish()
        except BaseException:
            spool.discard()
            raise
    finally:
        source.close()


class _Spool:
    """Bytes in memory up to :data:`SPOOL_MEMORY_BYTES`, then in a named temporary file.

    Not ``tempfile.SpooledTemporaryFile``: it rolls over to a file without a
    name, which the worker process could not open.
    """

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._memory: io.BytesIO | None = io.BytesIO()
        self._file: io.BufferedWriter | None = None
        self._path: str | None = None

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            # More than its stat said: refused, and not read any further.
            raise SourceTooLarge(f"source larger than its stat: over {self.limit} bytes")
        if self._memory is not None and self.size <= SPOOL_MEMORY_BYTES:
            self._memory.write(chunk)
            return
        with _no_space_is_507():
            if self._memory is not None:
                self._roll_over()
            assert self._file is not None
            self._file.write(chunk)

    def _roll_over(self) -> None:
        assert self._memory is not None
        descriptor, self._path = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp")
        self._file = open(descriptor, "wb")  # noqa: SIM115 (closed by finish or discard)
        self._file.write(self._memory.getbuffer())
        self._memory = None

    def finish(self) -> SpooledSource:
        if self._memory is not None:
            return SpooledSource(data=self._memory.getvalue())
        assert self._file is not None
        assert self._path is not None
        with _no_space_is_507():
            self._file.close()  # it flushes: a full disk may show only here
        return SpooledSource(path=self._path)

    def discard(self) -> None:
        self._memory = None
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)


@contextlib.contextmanager
def _no_space_is_507() -> Iterator[None]:
    try:
        yield
    except OSError as error:
        if error.errno not in _FULL:
            raise
        raise InsufficientStorage(
            "no space left for a temporary copy of the source; try again later"
        ) from None
