"""Files on this machine's file system.

Every blocking call (open, stat, read) runs in the library's I/O threads when
called from async code, unless the kernel can answer it from memory: an open
of names in the kernel's caches (``openat2`` with ``RESOLVE_CACHED``, see
:mod:`.cached`) and reads of cached pages (``preadv`` with ``RWF_NOWAIT``) run
on the event loop. The sync variants are for WSGI and sync views.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat as stat_module
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import IO

from fileresponse.exceptions import (
    FileResponseError,
    SourceForbidden,
    SourceNotFound,
    SourceUnavailable,
    UnsafePath,
)

# io_executor and ThreadedReads live in fileresponse.threads; imported from here by older code.
from fileresponse.threads import ThreadedReads, in_thread, io_executor

from .base import DeferredClose, SourceStat, StatOnce
from .cached import NotCached, open_cached

__all__ = [
    "FileObjectSource",
    "FilesystemSource",
    "ThreadedReads",
    "io_executor",
    "open_beneath",
    "relative_path_parts",
    "resolve_under_root",
]

# preadv(2) flag: fail with EAGAIN instead of waiting for the disk (Linux only).
_RWF_NOWAIT: int = getattr(os, "RWF_NOWAIT", 0)


def relative_path_parts(relative_path: str) -> list[str]:
    """The parts of a URL path, checked: :class:`UnsafePath` for anything that could escape.

    No I/O: symlinks are checked when the file is opened (:func:`open_beneath`).
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
    For a name to *write* under a root the library owns (derivatives). To
    read a file named by a request, use :func:`open_beneath`: a path checked
    here may be swapped for a symlink before it is opened.
    Does I/O (``realpath``): call it off the event loop.
    """
    parts = relative_path_parts(relative_path)
    real_root = os.path.realpath(root)
    candidate = os.path.realpath(os.path.join(real_root, *parts))
    if os.path.commonpath([real_root, candidate]) != real_root or candidate == real_root:
        raise UnsafePath("path escapes its root")
    return candidate


#: Symlinks followed in one look-up before giving up, as Linux does (ELOOP).
_MAX_SYMLINKS = 40
# O_PATH: a directory needs only search permission to be walked through.
_DIRECTORY_FLAGS = (
    getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
)
# O_NONBLOCK: opening a FIFO must not hang; it is refused after the fstat.
_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_MISSING = (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.EISDIR, errno.ENXIO)


def open_beneath(
    root: str | os.PathLike[str], relative_path: str, *, cached_only: bool = False
) -> int:
    """Open ``relative_path`` under ``root`` for reading, never leaving the root.

    The path is walked one component at a time from a descriptor of the
    root, each opened with ``O_NOFOLLOW`` relative to its parent; a symlink
    met on the way is read and its target walked the same way (an absolute
    target must lie under the root's real path). A directory swapped for a
    symlink at any moment is seen as a symlink, so the file opened is always
    beneath the root: what is checked is what is opened. Returns the open
    descriptor (the caller ``fstat``s and closes it).

    Raises :class:`SourceNotFound` (missing, a loop), :class:`UnsafePath`
    (an escape) and :class:`SourceForbidden` (permissions). Blocking: call it
    off the event loop; or with ``cached_only=True``, which raises
    :class:`~fileresponse.sources.cached.NotCached` rather than wait for the
    disk (and at a symlink), on it.
    """
    pending = deque(relative_path_parts(relative_path))
    root_fd = _open_step(os.fspath(root), _DIRECTORY_FLAGS & ~os.O_NOFOLLOW, None, cached_only)
    parents = [root_fd]
    followed = 0
    try:
        while pending:
            part = pending.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if len(parents) == 1:
                    raise UnsafePath("a symlink leads out of the root")
                os.close(parents.pop())
                continue
            flags = _DIRECTORY_FLAGS if pending else _FILE_FLAGS
            try:
                descriptor = _open_step(part, flags, parents[-1], cached_only)
            except _SymlinkMet:
                if cached_only:
                    raise NotCached(part) from None
                followed += 1
                if followed > _MAX_SYMLINKS:
                    raise SourceNotFound("too many levels of symbolic links") from None
                target = _read_link(part, parents[-1])
                if target.startswith("/"):
                    target = _beneath_real_root(root, target)
                    while len(parents) > 1:
                        os.close(parents.pop())
                pending.extendleft(reversed(target.split("/")))
                continue
            if not pending:
                return descriptor
            parents.append(descriptor)
        raise SourceNotFound("no file name")
    finally:
        for descriptor in parents:
            os.close(descriptor)


class _SymlinkMet(Exception):
    """The component is (now) a symbolic link."""


def _open_step(name: str, flags: int, dir_fd: int | None, cached_only: bool = False) -> int:
    try:
        if cached_only:
            return open_cached(name, flags, dir_fd)
        return os.open(name, flags, dir_fd=dir_fd)
    except PermissionError as error:
        raise SourceForbidden("no permission to read the file") from error
    except OSError as error:
        if error.errno == errno.ELOOP or (error.errno == errno.ENOTDIR and dir_fd is not None):
            # O_NOFOLLOW on a symlink: ELOOP; O_DIRECTORY on a symlink or a file: ENOTDIR.
            raise _SymlinkMet from None
        if error.errno in _MISSING:
            raise SourceNotFound("no such file") from None
        raise


def _read_link(name: str, dir_fd: int) -> str:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError as error:
        # EINVAL: not a symlink (a file where a directory was expected); ENOENT: gone since.
        raise SourceNotFound("no such file") from error


def _beneath_real_root(root: str | os.PathLike[str], target: str) -> str:
    """An absolute symlink target as a path relative to the root's real path."""
    real_root = os.path.realpath(root)
    relative = os.path.relpath(os.path.normpath(target), real_root)
    if relative.split(os.sep, 1)[0] == os.pardir:
        raise UnsafePath("a symlink leads out of the root")
    return "" if relative == os.curdir else relative


class FilesystemSource(StatOnce, DeferredClose):
    """A regular file on this machine.

    ``FilesystemSource.from_root(root, "a/b.txt")`` checks a URL path against
    its root: ``..``, absolute paths, NUL bytes, backslashes and symlinks out
    of the root give :class:`~fileresponse.exceptions.UnsafePath`.

    The file is opened at stat time (beneath the root without following a
    symlink out of it, see :func:`open_beneath`) and the reads use that
    descriptor, so a response sends the version it stat'ed even if the file
    is replaced. ``immutable=True`` promises that no other bytes will ever
    appear under this path (content-derived names): only then may a server
    reopen it by name (``http.response.pathsend``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        root: str | os.PathLike[str] | None = None,
        immutable: bool = False,
    ) -> None:
        super().__init__()
        self._path = os.fspath(path)
        self._root = None if root is None else os.fspath(root)
        self._immutable = immutable
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None
        self._nowait_reads = bool(_RWF_NOWAIT)

    @classmethod
    def from_root(cls, root: str | os.PathLike[str], relative_path: str) -> FilesystemSource:
        """A source for a URL path under ``root``; the syntax is checked now, symlinks at stat."""
        relative_path_parts(relative_path)
        return cls(relative_path, root=root)

    @property
    def name(self) -> str:
        return os.path.basename(self._path)

    def __repr__(self) -> str:
        return f"<FilesystemSource {self._path!r}>"

    # -- stat ---------------------------------------------------------------

    async def _astat_now(self) -> SourceStat:
        # On the loop when every name is in the kernel's caches (an open costs
        # a few microseconds; a hop to a thread, tens): in the threads otherwise.
        try:
            return self._stat_now(cached_only=True)
        except NotCached:
            return await in_thread(self._stat_now)

    def _stat_now(self, cached_only: bool = False) -> SourceStat:
        """Open the file, then ``fstat`` the descriptor: the reads use that descriptor."""
        if self._root is None:
            fd = self._open_path(cached_only)
        else:
            try:
                fd = open_beneath(self._root, self._path, cached_only=cached_only)
            except FileResponseError as error:
                # The same kind of error, naming the path (shown in the log, and under DEBUG).
                raise type(error)(f"{self._path!r}: {error}") from None
            except OSError as error:
                raise SourceUnavailable(f"cannot open {self._path!r}: {error}") from error
        try:
            info = os.fstat(fd)
            if not stat_module.S_ISREG(info.st_mode):
                raise SourceNotFound(f"not a regular file: {self._path!r}")
        except BaseException:
            os.close(fd)
            raise
        with self._state_lock:
            self._fd = fd
        self._identity = (info.st_dev, info.st_ino)
        return SourceStat(
            size=info.st_size,
            mtime=info.st_mtime,
            # Like nginx: size and modification time; strong, since any
            # write changes mtime at nanosecond resolution.
            etag=f"{info.st_mtime_ns:x}-{info.st_size:x}",
            # A server may reopen the file by name only if no other bytes can appear
            # under it; anything else is sent from this descriptor.
            path=self._absolute_path() if self._immutable else None,
        )

    def _absolute_path(self) -> str:
        if self._root is None:
            return os.path.abspath(self._path)
        return os.path.join(os.path.abspath(self._root), *relative_path_parts(self._path))

    def _open_path(self, cached_only: bool = False) -> int:
        """Open a path given by the application (symlinks followed, as it asked)."""
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            if cached_only:
                return open_cached(self._path, flags)
            return os.open(self._path, flags)
        except FileNotFoundError as error:
            raise SourceNotFound(f"no file {self._path!r}") from error
        except PermissionError as error:
            raise SourceForbidden(f"no permission to read {self._path!r}") from error
        except OSError as error:
            if error.errno in (*_MISSING, errno.ELOOP):
                raise SourceNotFound(f"no file {self._path!r}") from error
            raise SourceUnavailable(f"cannot open {self._path!r}: {error}") from error

    @property
    def local_path(self) -> str:
        """The absolute path of the file, as named (another process may open it)."""
        return self._absolute_path()

    @property
    def identity(self) -> tuple[int, int] | None:
        """``(st_dev, st_ino)`` of the file opened at stat time: whoever opens
        :attr:`local_path` later can check that it got the same file."""
        return self._identity

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
                data = await in_thread(self._pread, fd, size, offset)
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
        with self._read_guard():
            data = os.pread(fd, size, offset)
        if len(data) < size:
            raise OSError(errno.EIO, f"{self._path!r} shrank while it was being sent")
        return data

    # -- closing (DeferredClose: now, or after the read in an I/O thread) -----

    def _release(self) -> None:
        with self._state_lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _closed_error(self) -> Exception:
        return OSError(errno.EBADF, "source closed")


class FileObjectSource(ThreadedReads, StatOnce):
    """An open binary file object (anything with ``read`` and ``seek``).

    The response takes ownership: closing the response closes the file.
    """

    def __init__(self, file: IO[bytes], *, name: str | None = None) -> None:
        self._file = file
        self._name = name or os.path.basename(str(getattr(file, "name", "") or ""))
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    def _stat_now(self) -> SourceStat:
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
