"""The library's I/O threads: the one pool where blocking file and storage calls run.

Async code calls ``await in_thread(function, *args)``; sources that read with
a blocking call get their range iterators from :class:`ThreadedReads`. The
pool has ``IO_THREADS`` threads per process, made on first use.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, TypeVarTuple

from .conf import get_config, per_settings

__all__ = ["ThreadedReads", "in_thread", "io_executor"]

_T = TypeVar("_T")
_Args = TypeVarTuple("_Args")


# No setting resets it: a pool replaced under running reads would refuse their next chunk.
@per_settings()
def io_executor() -> ThreadPoolExecutor:
    """The per-process thread pool for file I/O (created on first use, after any fork)."""
    return ThreadPoolExecutor(
        max_workers=get_config().IO_THREADS, thread_name_prefix="fileresponse-io"
    )


async def in_thread(function: Callable[[*_Args], _T], *args: *_Args) -> _T:
    """``function(*args)`` in the I/O threads, awaited without blocking the event loop."""
    return await asyncio.get_running_loop().run_in_executor(io_executor(), function, *args)


class ThreadedReads(abc.ABC):
    """Range reads for sources that read with a blocking ``_read_at(offset, size)``.

    The async variant runs every read in the I/O threads.
    """

    @abc.abstractmethod
    def _read_at(self, offset: int, size: int) -> bytes:
        """Exactly ``size`` bytes at ``offset`` (blocking), or an ``OSError``."""

    def iter_range(self, start: int, length: int, chunk_size: int) -> Iterator[bytes]:
        offset, end = start, start + length
        while offset < end:
            data = self._read_at(offset, min(chunk_size, end - offset))
            offset += len(data)
            yield data

    async def aiter_range(self, start: int, length: int, chunk_size: int) -> AsyncIterator[bytes]:
        offset, end = start, start + length
        while offset < end:
            size = min(chunk_size, end - offset)
            yield await in_thread(self._read_at, offset, size)
            offset += size
