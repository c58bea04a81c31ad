"""The protocol every source follows, and what the sources of this package share.

:class:`StatOnce` is the stat asked once per source (and the no-op
``aprepare``); :class:`DeferredClose` is the ``close()`` of sources whose
reads run in the I/O threads.
"""

from __future__ import annotations

import abc
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from fileresponse.exceptions import SourceUnavailable
from fileresponse.threads import in_thread

__all__ = ["DeferredClose", "Source", "SourceStat", "StatOnce"]


@dataclass(frozen=True, slots=True)
class SourceStat:
    """What a source knows of its file without reading it.

    ``etag`` is the opaque part of a strong entity tag (no quotes), or
    ``None`` when the backend has none. ``path`` is an absolute local path
    that a server may reopen by name (``http.response.pathsend``), set only
    where no other bytes can ever appear under that name (derivatives under
    content-derived names); otherwise ``None`` and the bytes are sent from
    the source as it was stat'ed.
    """

    size: int
    mtime: float
    etag: str | None = None
    content_type: str | None = None
    path: str | None = None


@runtime_checkable
class Source(Protocol):
    """A file to serve: stat it once, prepare the first read, then read byte ranges of it.

    ``stat``/``astat`` are called once per response, before any read, and
    may raise the errors of :mod:`fileresponse.exceptions`. ``aprepare``
    gets the first range a response will read, before the response is
    returned: a remote source starts its request there, so that a failure
    can still be an error status (a no-op for the others; see
    :meth:`~fileresponse.responses.AsyncFileResponse.aprepare`). Reads
    after a stat return the bytes of the version that was stat'ed, or fail.
    ``close`` releases what the source holds and may be called more than
    once; after it, reads fail.
    """

    @property
    def name(self) -> str: ...

    def stat(self) -> SourceStat: ...

    async def astat(self) -> SourceStat: ...

    async def aprepare(self, start: int, length: int) -> None: ...

    def iter_range(self, start: int, length: int, chunk_size: int) -> Iterator[bytes]: ...

    def aiter_range(self, start: int, length: int, chunk_size: int) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


class StatOnce(abc.ABC):
    """``stat``/``astat`` that ask the backend once, then answer from memory.

    Subclasses write ``_stat_now`` (blocking); ``_astat_now`` runs it in the
    I/O threads unless the backend has an async call of its own.
    """

    _stat: SourceStat | None = None

    def stat(self) -> SourceStat:
        if self._stat is None:
            self._stat = self._stat_now()
        return self._stat

    async def astat(self) -> SourceStat:
        if self._stat is None:
            self._stat = await self._astat_now()
        return self._stat

    @abc.abstractmethod
    def _stat_now(self) -> SourceStat:
        """Ask the backend (blocking)."""

    async def _astat_now(self) -> SourceStat:
        return await in_thread(self._stat_now)

    async def aprepare(self, start: int, length: int) -> None:
        """Nothing to prepare: the first read starts when it is asked for."""
        return


class DeferredClose(abc.ABC):
    """``close()`` now, or when the read under way in an I/O thread ends.

    A blocking read cannot be interrupted: what it uses is released
    (``_release``) by whichever comes last, ``close()`` or the end of the
    last read, so ``close()`` never waits. Reads go through
    ``with self._read_guard():``, which fails once the source is closed.
    ``_state_lock`` also guards what ``_release`` swaps out.
    """

    def __init__(self) -> None:
        self._state_lock = threading.Lock()
        self._reads = 0
        self._closing = False

    @contextlib.contextmanager
    def _read_guard(self) -> Iterator[None]:
        with self._state_lock:
            if self._closing:
                raise self._closed_error()
            self._reads += 1
        try:
            yield
        finally:
            self._end_read()

    def _end_read(self) -> None:
        with self._state_lock:
            self._reads -= 1
            release = self._closing and self._reads == 0
        if release:
            self._release()

    def close(self) -> None:
        """Release what the source holds now, or after the read under way (never waits)."""
        with self._state_lock:
            self._closing = True
            release = self._reads == 0
        if release:
            self._release()

    @abc.abstractmethod
    def _release(self) -> None:
        """Free what the source holds; may be called more than once."""

    def _closed_error(self) -> Exception:
        return SourceUnavailable(f"{self!r} is closed")
