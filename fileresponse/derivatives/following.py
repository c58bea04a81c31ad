"""Following a streamed run of another process of this machine, live, from its file.

The process that holds single-flight's lock writes the command's output to
the *live file* ``.<filename>.streaming.tmp`` beside the final name
(:func:`create_live`: ``O_EXCL``, so only the lock holder writes it) and
commits it with ``os.replace``. A process that does not get the lock opens
that file (:func:`open_live`) and sends it from its first byte as it grows
(:class:`LiveFollower`), keeping the descriptor open: the run is committed
when the final name is that same file (the body ends once all of it is
read), failed when the live file is gone otherwise (:class:`StreamCut`), and
cut after ``DERIVATIVES_TIMEOUT`` without a new byte. Remote stores have no
live file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable

from fileresponse.exceptions import StreamCut
from fileresponse.sources.filesystem import resolve_under_root
from fileresponse.threads import in_thread

from .keys import TEMP_SUFFIX

__all__ = [
    "LIVE_SUFFIX",
    "LiveFollower",
    "create_live",
    "follow_elsewhere",
    "live_path",
    "open_live",
]

#: The end of a live file's name (a temporary file: purged like the others when stale).
LIVE_SUFFIX = ".streaming" + TEMP_SUFFIX
_FIRST_PAUSE = 0.005
_LONGEST_PAUSE = 0.05

_Identity = tuple[int, int]
# What the file says when there is no new byte to read.
_WAIT, _COMMITTED, _FAILED = "wait", "committed", "failed"


def live_path(root: str, name: str) -> str:
    """Where the run of derivative ``name`` in ``root`` writes its output (``realpath``:
    blocking)."""
    directory, filename = os.path.split(resolve_under_root(root, name))
    return os.path.join(directory, f".{filename}{LIVE_SUFFIX}")


def create_live(root: str, name: str) -> tuple[int, str]:
    """``(descriptor, path)`` of a new live file of ``name`` (the lock holder's; blocking).

    A live file already there is a leftover of a process that died in its run
    (the lock is ours): it is removed first.
    """
    path = live_path(root, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    return os.open(path, flags, 0o600), path


def _open_nonempty(root: str, name: str) -> tuple[int, _Identity, str, str] | None:
    """``(descriptor, identity, live path, final path)`` of the live file of ``name`` once
    it holds a byte, else ``None`` (blocking)."""
    path = live_path(root, name)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    info = os.fstat(descriptor)
    if info.st_size == 0:  # created, no output yet: look again later
        os.close(descriptor)
        return None
    return descriptor, (info.st_dev, info.st_ino), path, resolve_under_root(root, name)


async def open_live(root: str, name: str, seconds: float, chunk_size: int) -> LiveFollower | None:
    """A body following the live file of ``name`` from its first byte, or ``None`` (none yet)."""
    opened = await in_thread(_open_nonempty, root, name)
    if opened is None:
        return None
    descriptor, identity, path, final = opened
    return LiveFollower(descriptor, identity, path, final, name, seconds, chunk_size)


async def follow_elsewhere(
    root: str,
    name: str,
    seconds: float,
    chunk_size: int,
    *,
    elsewhere: Callable[[], bool],
    changed: Callable[[], Awaitable[None]],
) -> LiveFollower | None:
    """While ``elsewhere()`` (another process holds the run's locks), look for its live
    file between waits for ``changed()``: its follower once it has a byte, else ``None``."""
    pause = _FIRST_PAUSE
    while elsewhere():
        follower = await open_live(root, name, seconds, chunk_size)
        if follower is not None:
            if elsewhere():
                return follower
            follower.close()  # the file of this process's run, or committed meanwhile
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed(), pause)
        pause = min(pause * 2, _LONGEST_PAUSE)
    return None


class LiveFollower:
    """A response's body: a live file from its first byte until its run ends."""

    def __init__(
        self,
        descriptor: int,
        identity: _Identity,
        path: str,
        final: str,
        name: str,
        seconds: float,
        chunk_size: int,
    ) -> None:
        self._descriptor: int | None = descriptor
        self._identity = identity
        self._path = path
        self._final = final
        self.name = name
        self._chunk_size = chunk_size
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds
        self._position = 0

    def __aiter__(self) -> LiveFollower:
        return self

    async def __anext__(self) -> bytes:
        pause = _FIRST_PAUSE
        while self._descriptor is not None:
            step = await in_thread(self._step)
            if isinstance(step, bytes):
                self._position += len(step)
                self._deadline = time.monotonic() + self._seconds
                return step
            if step == _COMMITTED:
                break
            if step == _FAILED:
                self.close()
                raise StreamCut(f"{self.name}: the run of another process failed")
            if time.monotonic() >= self._deadline:
                self.close()
                raise StreamCut(
                    f"{self.name}: the run of another process wrote nothing for {self._seconds:g}s"
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)
        self.close()
        raise StopAsyncIteration

    def _step(self) -> bytes | str:
        """The next bytes, else what the file's names say of the run (blocking)."""
        descriptor = self._descriptor
        if descriptor is None:
            return _COMMITTED
        chunk = self._read(descriptor)
        if chunk:
            return chunk
        # The live name first: a commit renames it, so once it is gone the final name tells.
        if self._names_this_file(self._path):
            return _WAIT
        if not self._names_this_file(self._final):
            return _FAILED
        # Committed: read what was written between the first read and the rename.
        return self._read(descriptor) or _COMMITTED

    def _read(self, descriptor: int) -> bytes:
        size = os.fstat(descriptor).st_size
        if self._position >= size:
            return b""
        return os.pread(descriptor, min(self._chunk_size, size - self._position), self._position)

    def _names_this_file(self, path: str) -> bool:
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return False
        return (info.st_dev, info.st_ino) == self._identity

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            os.close(descriptor)
