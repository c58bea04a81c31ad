"""Opening a file on the event loop only when the kernel needs no disk for it.

``openat2(2)`` with ``RESOLVE_CACHED`` (Linux 5.12) fails with ``EAGAIN``
instead of reading a directory or an inode from the disk: the open is then
as cheap as a lookup in memory, and can run on the event loop, as a read
with ``preadv(RWF_NOWAIT)`` does. Anything else (a name not in the cache, a
kernel or a sandbox without ``openat2``) raises :class:`NotCached`, and the
caller opens the file in the I/O threads.

Python has no binding for ``openat2``: it is called through ``ctypes``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys

__all__ = ["NotCached", "available", "open_cached"]

#: The syscall's number is the same on every Linux architecture (it postdates the split).
_SYS_OPENAT2 = 437
_RESOLVE_CACHED = 0x20
_AT_FDCWD = -100


class NotCached(Exception):
    """The open would have to wait for the disk (or ``openat2`` is not available)."""


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


def _load() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_libc = _load()
_syscall = None if _libc is None else _libc.syscall
#: False once the kernel refused the call itself (no openat2, or no RESOLVE_CACHED).
_working = _syscall is not None


def available() -> bool:
    """Whether cached opens are tried at all (Linux with ``openat2`` and ``RESOLVE_CACHED``)."""
    return _working


def open_cached(name: str, flags: int, dir_fd: int | None = None) -> int:
    """``os.open(name, flags, dir_fd=dir_fd)`` if nothing must come from the disk.

    Raises :class:`NotCached` otherwise, and ``OSError`` as ``os.open`` does
    (a name missing from a cached directory is ``FileNotFoundError`` at once).
    """
    global _working
    if not _working or _syscall is None:
        raise NotCached("openat2 is not available")
    how = _OpenHow(flags, 0, _RESOLVE_CACHED)
    fd = _syscall(
        _SYS_OPENAT2,
        ctypes.c_int(_AT_FDCWD if dir_fd is None else dir_fd),
        ctypes.c_char_p(os.fsencode(name)),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd >= 0:
        return int(fd)
    code = ctypes.get_errno()
    if code == errno.EAGAIN:
        raise NotCached(name)
    if code in (errno.ENOSYS, errno.EPERM, errno.E2BIG) or (
        code == errno.EINVAL and not flags & ~_KNOWN_FLAGS
    ):
        # No openat2 (old kernel, seccomp) or no RESOLVE_CACHED: stop trying.
        _working = False
        raise NotCached("openat2 is not available")
    raise OSError(code, os.strerror(code), name)


# Flags the library passes; EINVAL with only these means the kernel refused RESOLVE_CACHED.
_KNOWN_FLAGS = (
    os.O_RDONLY
    | os.O_NONBLOCK
    | os.O_NOFOLLOW
    | os.O_CLOEXEC
    | os.O_DIRECTORY
    | getattr(os, "O_PATH", 0)
)
