"""The library's threads: the I/O pool, and the threads lent to Django's requests.

Async code calls ``await in_thread(function, *args)``; sources that read with
a blocking call get their range iterators from :class:`ThreadedReads`. The
pool has ``IO_THREADS`` threads per process, made on first use.
:class:`RequestThreads` keeps the one thread each request's sync code runs in
(Django's thread-sensitive mode) for the next request, as a WSGI server does.
"""

from __future__ import annotations

import abc
import asyncio
import inspect
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar, TypeVarTuple

from asgiref.sync import ThreadSensitiveContext

from .conf import PerSettings, get_config, per_settings

__all__ = ["RequestThreads", "ThreadedReads", "in_thread", "io_executor", "request_threads"]

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


class _RequestThread(ThreadPoolExecutor):
    """One thread, and whether a call submitted to it is still running."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="fileresponse-request")
        self.pid = os.getpid()
        self._calls = 0
        self._count = threading.Lock()

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        with self._count:
            self._calls += 1
        future = super().submit(fn, *args, **kwargs)
        # Added before asyncio's own callback: the count is down when the caller resumes.
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _future: Future[Any]) -> None:
        with self._count:
            self._calls -= 1

    @property
    def idle(self) -> bool:
        return self._calls == 0 and self.pid == os.getpid()


class RequestThreads:
    """Single-thread executors lent to requests, kept for the next ones.

    Django's ASGI handler runs each request's sync code (signal receivers such
    as ``close_old_connections``, sync middleware and views) in one thread of
    its own, started and joined per request: on the event loop, each start
    waits for the new thread to run. Here a request borrows an idle thread and
    gives it back: still one thread per request and one request per thread at
    a time, as under a threaded WSGI server. A thread whose call outlived its
    request (a cancelled request) is not lent again.
    """

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._idle: list[_RequestThread] = []
        self._lock = threading.Lock()

    def lend(self) -> _RequestThread:
        with self._lock:
            while self._idle:
                executor = self._idle.pop()
                if executor.pid == os.getpid():
                    return executor
        return _RequestThread()

    def give_back(self, executor: _RequestThread) -> None:
        if executor.idle:
            with self._lock:
                if len(self._idle) < self.keep:
                    self._idle.append(executor)
                    return
        executor.shutdown(wait=False)

    def close(self) -> None:
        """End the idle threads; threads given back from now on are ended too."""
        with self._lock:
            self.keep, idle, self._idle = 0, self._idle, []
        for executor in idle:
            executor.shutdown(wait=False)

    def context(self, executor: _RequestThread) -> ThreadSensitiveContext:
        """The thread-sensitive context that sends the request's sync calls to ``executor``."""
        return ThreadSensitiveContext(executor=executor)  # type: ignore[call-arg,unused-ignore]


#: asgiref 3.13 takes the executor of a thread-sensitive context; older ones make their own.
_CONTEXT_TAKES_EXECUTOR = "executor" in inspect.signature(ThreadSensitiveContext).parameters


def _request_threads() -> RequestThreads | None:
    keep = get_config().REQUEST_THREADS
    return RequestThreads(keep) if keep and _CONTEXT_TAKES_EXECUTOR else None


def _close(threads: RequestThreads | None) -> None:
    if threads is not None:
        threads.close()


#: The per-process request threads, or None (``REQUEST_THREADS = 0``, or an older asgiref);
#: when ``FILERESPONSE`` changes, the idle threads of the old value are ended.
request_threads: PerSettings[RequestThreads | None] = PerSettings(
    _request_threads, ("FILERESPONSE",), close=_close
)
