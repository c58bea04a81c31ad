"""Files on this machine's file system.

Every blocking call (open, stat, read) runs in the library's I/O threads when
called from async code; the sync variants are for WSGI and sync views.
"""

from __future__ import annotations

import abc
import asyncio
import errno
import os
import stat as stat_module
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from fileresponse.exceptions import SourceForbidden, SourceNotFound, UnsafePath

from .base import SourceStat

__all__ = [
    "FileObjectSource",
    "FilesystemSource",
    "ThreadedReads",
    "io_executor",
    "relative_path_parts",
    "resolve_under_root",
]

# preadv(2) flag: fail with EAGAIN instead of waiting for the disk (Linux only).
_RWF_NOWAIT: int = getattr(os, "RWF_NOWAIT", 0)

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def io_executor() -> ThreadPoolExecutor:
    """The per-process thread pool for file I/O (created on first use, after any fork)."""
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                from fileresponse.conf import get_config

                _executor = ThreadPoolExecutor(
                    max_workers=get_config().IO_THREADS, thread_name_prefix="fileresponse-io"
                )
    return _executor


def relative_path_parts(relative_path: str) -> list[str]:
    """The parts of a URL path, checked: :class:`UnsafePath` for anything that could escape.

    No I/O: symlinks are checked at stat time by :func:`resolve_under_root`.
    """
    if "\x00" in relative_path or "\\" in relative_path:
        raise UnsafePath("NUL or backslash in path")
    if relative_path.startswith("/") or (len(relative_path) > 1 and relative_path[1] == ":"):
        raise UnsafePath("absolute path")
    parts = [part for part in relative_path.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise UnsafePath("'..' in path")
    if not parts:
        raise SourceNotFound("no file name")
    return parts


def resolve_under_root(root: str | os.PathLike[str], relative_path: str) -> str:
    """The real path of ``relative_path`` under ``root``, symlinks resolved.

    Raises :class:`UnsafePath` when the result is not inside the real root.
    Does I/O (``realpath``): call it off the event loop.
    """
    parts = relative_path_parts(relative_path)
    real_root = os.path.realpath(root)
    candidate = os.path.realpath(os.path.join(real_root, *parts))
    if os.path.commonpath([real_root, candidate]) != real_root or candidate == real_root:
        raise UnsafePath("path escapes its root")
    return candidate


class FilesystemSource:
    """A regular file on this machine.

    ``FilesystemSource.from_root(root, "a/b.txt")`` checks a URL path against
    its root: ``..``, absolute paths, NUL bytes, backslashes and symlinks out
    of the root give :class:`~fileresponse.exceptions.UnsafePath`.

    The file is opened at stat time and the reads use that descriptor, so a
    response sends the version it stat'ed even if the file is replaced.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None
    ) -> None:
        self._path = os.fspath(path)
        self._root = None if root is None else os.fspath(root)
        self._fd: int | None = None
        self._in_flight = 0
        self._closing = False
        self._lock = threading.Lock()
        self._stat: SourceStat | None = None
        self._nowait_reads = bool(_RWF_NOWAIT)

    @classmethod
    def from_root(cls, root: str | os.PathLike[str], relative_path: str) -> FilesystemSource:
        """A source for a URL path under ``root``; the syntax is checked now, symlinks at stat."""
        relative_path_parts(relative_path)
        return cls(relative_path, root=root)

    @property
    def name(self) -> str:
        return Path(self._path).name

    def __repr__(self) -> str:
        return f"<FilesystemSource {self._path!r}>"

    # -- stat ---------------------------------------------------------------

    def stat(self) -> SourceStat:
        if self._stat is None:
            self._stat = self._open_and_stat()
        return self._stat

    async def astat(self) -> SourceStat:
        if self._stat is None:
            loop = asyncio.get_running_loop()
            self._stat = await loop.run_in_executor(io_executor(), self._open_and_stat)
        return self._stat

    def _open_and_stat(self) -> SourceStat:
        path = self._path if self._root is None else resolve_under_root(self._root, self._path)
        try:
            # O_NONBLOCK: opening a FIFO must not hang; it is refused below.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError as error:
            raise SourceNotFound(f"no file {self._path!r}") from error
        except PermissionError as error:
            raise SourceForbidden(f"no permission to read {self._path!r}") from error
        except OSError as error:
            if error.errno in (errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.EISDIR):
                raise SourceNotFound(f"no file {self._path!r}") from error
            raise
        try:
            info = os.fstat(fd)
            if not stat_module.S_ISREG(info.st_mode):
                raise SourceNotFound(f"not a regular file: {self._path!r}")
        except BaseException:
            os.close(fd)
            raise
        with self._lock:
            self._fd = fd
        return SourceStat(
            size=info.st_size,
            mtime=info.st_mtime,
            # Like nginx: size and modification time; strong, since any
            # write changes mtime at nanosecond resolution.
            etag=f"{info.st_mtime_ns:x}-{info.st_size:x}",
            path=os.path.abspath(path),
        )

    @property
    def file_descriptor(self) -> int | None:
        """The open descriptor after a stat (``None`` before, or once closed)."""
        return self._fd

    # -- reading ------------------------------------------------------------

    def _require_fd(self) -> int:
        if self._fd is None:
            raise RuntimeError("stat the source before reading it")
        return self._fd

    def iter_range(self, start: int, length: int, chunk_size: int) -> Iterator[bytes]:
        fd = self._require_fd()
        offset, end = start, start + length
        while offset < end:
            data = os.pread(fd, min(chunk_size, end - offset), offset)
            if not data:
                raise OSError(errno.EIO, f"{self._path!r} shrank while it was being sent")
            offset += len(data)
            yield data

    async def aiter_range(self, start: int, length: int, chunk_size: int) -> AsyncIterator[bytes]:
        """Read without blocking the event loop.

        Bytes already in the page cache are read on the loop with
        ``preadv(..., RWF_NOWAIT)``, which never waits for the disk (Linux
        4.14+); whatever is not cached, or every read where the flag is not
        supported, goes to an I/O thread. Hot files then cost no thread
        hand-off at all, and cold ones are read as before.
        """
        fd = self._require_fd()
        loop = asyncio.get_running_loop()
        scratch = bytearray(min(chunk_size, length)) if self._nowait_reads else None
        offset, end = start, start + length
        while offset < end:
            size = min(chunk_size, end - offset)
            data = b"" if scratch is None else self._read_cached(fd, scratch, size, offset)
            if data:
                # A read on the loop does not yield, and neither does a send
                # that fits the socket buffer: give the loop a turn after each
                # chunk, so other connections (and a client's disconnect) are
                # served between two chunks of a download.
                await asyncio.sleep(0)
            else:
                data = await loop.run_in_executor(io_executor(), self._pread, fd, size, offset)
            offset += len(data)
            yield data

    def _read_cached(self, fd: int, scratch: bytearray, size: int, offset: int) -> bytes:
        """What of ``size`` bytes at ``offset`` the page cache holds, without waiting."""
        view = memoryview(scratch)[:size]
        try:
            count = os.preadv(fd, [view], offset, _RWF_NOWAIT)
        except BlockingIOError:
            return b""
        except OSError as error:
            if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            self._nowait_reads = False  # this file system does not support it
            return b""
        return bytes(view[:count])

    def _pread(self, fd: int, size: int, offset: int) -> bytes:
        with self._lock:
            if self._closing:
                raise OSError(errno.EBADF, "source closed")
            self._in_flight += 1
        try:
            data = os.pread(fd, size, offset)
            if len(data) < size:
                raise OSError(errno.EIO, f"{self._path!r} shrank while it was being sent")
            return data
        finally:
            self._end_read()

    def _end_read(self) -> None:
        with self._lock:
            self._in_flight -= 1
            close_now = self._closing and self._in_flight == 0
        if close_now:
            self._close_fd()

    # -- closing ------------------------------------------------------------

    def close(self) -> None:
        """Close the descriptor now, or after the read that is under way."""
        with self._lock:
            self._closing = True
            close_now = self._in_flight == 0
        if close_now:
            self._close_fd()

    def _close_fd(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


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
        loop = asyncio.get_running_loop()
        offset, end = start, start + length
        while offset < end:
            size = min(chunk_size, end - offset)
            yield await loop.run_in_executor(io_executor(), self._read_at, offset, size)
            offset += size


class FileObjectSource(ThreadedReads):
    """An open binary file object (anything with ``read`` and ``seek``).

    The response takes ownership: closing the response closes the file.
    """

    def __init__(self, file: IO[bytes], *, name: str | None = None) -> None:
        self._file = file
        self._name = name or os.path.basename(str(getattr(file, "name", "") or ""))
        self._lock = threading.Lock()
        self._stat: SourceStat | None = None

    @property
    def name(self) -> str:
        return self._name

    def stat(self) -> SourceStat:
        if self._stat is None:
            self._stat = self._stat_file()
        return self._stat

    async def astat(self) -> SourceStat:
        if self._stat is None:
            loop = asyncio.get_running_loop()
            self._stat = await loop.run_in_executor(io_executor(), self._stat_file)
        return self._stat

    def _stat_file(self) -> SourceStat:
        info: os.stat_result | None
        try:
            info = os.fstat(self._file.fileno())
        except (AttributeError, OSError, ValueError):
            info = None
        if info is not None and stat_module.S_ISREG(info.st_mode):
            return SourceStat(
                size=info.st_size,
                mtime=info.st_mtime,
                etag=f"{info.st_mtime_ns:x}-{info.st_size:x}",
            )
        # An in-memory or unnamed file: size by seeking; no validators.
        position = self._file.tell()
        size = self._file.seek(0, os.SEEK_END)
        self._file.seek(position)
        return SourceStat(size=size, mtime=0.0)

    def _read_at(self, offset: int, size: int) -> bytes:
        with self._lock:
            self._file.seek(offset)
            data = self._file.read(size)
        if len(data) < size:
            raise OSError(errno.EIO, "file shrank while it was being sent")
        return data

    def close(self) -> None:
        with self._lock:
            self._file.close()
