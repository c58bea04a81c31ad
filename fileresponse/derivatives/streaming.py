"""Streamed derivatives: a command's output sent to clients while it is made, then stored.

On a miss for a processor that ``streams``, the server process runs its
command (its own session: the whole process group is killed on failure),
writes stdout to a temporary file beside the final name, and hands the bytes
to every request of this process that follows the run; exit 0 commits the
file, anything else deletes it and cuts the responses. Followers behind the
command read from the temporary file: memory stays bounded. Across processes
the run holds single-flight's locks; another process follows its temporary
file live (:mod:`.following`), or waits for the stored file (remote stores).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fileresponse.exceptions import StreamCut
from fileresponse.sources.filesystem import resolve_under_root
from fileresponse.threads import in_thread

from .diagnostics import log_generated
from .exceptions import (
    CommandFailed,
    ProcessingError,
    ProcessingUnavailable,
)
from .following import LiveFollower, create_live, follow_elsewhere
from .keys import TEMP_SUFFIX, lock_key
from .processors import JobInput, Output, Processor
from .processors.base import open_checked
from .singleflight import get_single_flight
from .slots import RunSlot, take_slot
from .spool import spooled_source

if TYPE_CHECKING:
    from django.core.files.storage import Storage

    from fileresponse.conf import Config

    from .originals import SourceState
    from .processors.base import Command
    from .spec import Spec
    from .store import DerivativeStore

__all__ = ["CHUNK_SIZE", "Opened", "StreamCut", "StreamRequest", "await_stream", "open_stream"]

logger = logging.getLogger("fileresponse.derivatives")

#: The largest read from the command's stdout (and from the temporary file).
CHUNK_SIZE = 64 * 1024
_STDERR_TAIL = 2000
_STDERR_WAIT = 1.0


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """Everything a run needs: what to make, of which source, under which name."""

    store: DerivativeStore
    processor: Processor
    source_storage: Storage
    state: SourceState
    spec: Spec
    output: Output
    name: str
    engine: str
    config: Config
    #: Called with a failure of the run (the negative cache), unless it was abandoned.
    on_failure: Callable[[ProcessingError], None]


@dataclass(frozen=True, slots=True)
class Opened:
    """What :func:`open_stream` found: a body to follow, or the derivative stored."""

    #: The run's bytes from the first, then live; ``None``: serve the stored file.
    body: AsyncIterator[bytes] | None
    #: Whether the request joined a run it did not start (or found another's result).
    collapsed: bool


class _Abandoned(ProcessingUnavailable):
    """Nobody followed the run any more, and ``DERIVATIVES_STREAM_ABANDON`` is set."""


class _Run:
    """One run of a streaming processor in this process, and the requests that follow it."""

    def __init__(self, request: StreamRequest) -> None:
        self.request = request
        self.size = 0
        self.live = False
        self.finished = False
        self.error: BaseException | None = None
        self.followers = 0
        self.abandoned = False
        #: Whether this run made the derivative (``False``: another process did).
        self.made = False
        #: Whether this process holds the locks and makes it (no run elsewhere to follow).
        self.producing = False
        self._descriptor: int | None = None
        self._latest = (0, b"")
        self._process: asyncio.subprocess.Process | None = None
        self._changed = asyncio.Event()

    # -- state shared with the followers (all on the event loop) --------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, seen: asyncio.Event) -> None:
        await seen.wait()

    def enter(self) -> None:
        self.followers += 1

    def leave(self) -> None:
        self.followers -= 1
        if self.followers == 0:
            if self.finished:
                self._close_descriptor()
            elif self.request.config.DERIVATIVES_STREAM_ABANDON:
                self.abandoned = True
                self._kill()

    async def read(self, position: int) -> bytes:
        """The output's bytes from ``position`` (at most one chunk): the last one, or the file."""
        offset, latest = self._latest
        if offset == position and latest:
            return latest
        assert self._descriptor is not None
        length = min(CHUNK_SIZE, self.size - position)
        return await in_thread(os.pread, self._descriptor, length, position)

    def _close_descriptor(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    def _kill(self) -> None:
        """Kill the command's whole process group (its session)."""
        process = self._process
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

    # -- the run ----------------------------------------------------------------

    async def fly(self) -> None:
        """Hold single-flight's locks and run; a run elsewhere leaves the stored file."""
        request = self.request
        store = request.store

        async def is_done() -> bool:
            return await in_thread(store.exists, request.name)

        try:
            self.made = await get_single_flight(store).run(
                lock_key(request.name), is_done, self._produce
            )
        except BaseException as error:
            self.error = error
            if isinstance(error, ProcessingError) and not self.abandoned:
                request.on_failure(error)
            if not isinstance(error, Exception):
                raise
        finally:
            self.finished = True
            self._latest = (0, b"")
            if self.followers == 0:
                self._close_descriptor()
            self._notify()

    async def _produce(self) -> None:
        request = self.request
        self.producing = True
        started = time.perf_counter()
        async with _source_descriptor(request) as source:
            source_input = JobInput(f"/dev/fd/{source}", descriptor=source)
            job = request.processor.job(request.spec, request.output, source_input, request.config)
            # May probe the source (blocking) and refuse it before the run starts.
            command = await in_thread(request.processor.command, job)
            temporary = await in_thread(self._create_temporary)
            try:
                await self._execute(command, source)
                await in_thread(
                    request.store.write_manifest,
                    request.state.storage_alias,
                    request.state.name,
                    request.engine,
                )
                await in_thread(self._commit, temporary)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    await in_thread(os.unlink, temporary)
        log_generated(
            request.name,
            request.state,
            request.spec,
            seconds=time.perf_counter() - started,
            size=self.size,
            summary=f"streamed command {_command_name(request.spec, command)}",
        )

    def _create_temporary(self) -> str:
        """The live file beside the final name (:mod:`.following`), or one in TMPDIR; open."""
        root = self.request.store.root
        if root is not None:
            descriptor, temporary = create_live(root, self.request.name)
        else:
            descriptor, temporary = tempfile.mkstemp(
                prefix="fileresponse-derivative-", suffix=TEMP_SUFFIX
            )
        self._descriptor = descriptor
        return temporary

    async def _execute(self, command: Command, source: int) -> None:
        """Run ``command``, its stdout appended to the temporary file; raise unless exit 0."""
        name = _command_name(self.request.spec, command)
        timeout = command.timeout or float(self.request.config.DERIVATIVES_TIMEOUT)
        if self.abandoned:  # its clients left while it waited for the lock or the source
            raise _Abandoned(f"command {name!r} abandoned: no client followed it")
        try:
            self._process = process = await asyncio.create_subprocess_exec(
                *command.argv,
                stdin=source if command.stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=() if command.stdin else (source,),
                start_new_session=True,
            )
        except OSError as error:
            raise CommandFailed(f"command {name!r} cannot start: {error.strerror}") from None
        command.limit(process.pid)
        assert process.stdout is not None
        assert process.stderr is not None
        errors = asyncio.ensure_future(_tail(process.stderr))
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while True:
                # Only the waits are timed: a write in its thread is never abandoned.
                async with asyncio.timeout_at(deadline):
                    chunk = await process.stdout.read(CHUNK_SIZE)
                if not chunk:
                    break
                await in_thread(_write_all, self._descriptor, chunk)
                self._latest = (self.size, chunk)
                self.size += len(chunk)
                self.live = True
                self._notify()
            async with asyncio.timeout_at(deadline):
                status = await process.wait()
        except TimeoutError:
            raise ProcessingUnavailable(f"command {name!r} took longer than {timeout:g}s") from None
        finally:
            # Whatever happened, nothing of its session outlives the run.
            self._kill()
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await asyncio.shield(process.wait())
            stderr = b""
            with contextlib.suppress(TimeoutError):  # a child that escaped its session
                stderr = await asyncio.wait_for(errors, _STDERR_WAIT)
        if status != 0 and self.abandoned:
            raise _Abandoned(f"command {name!r} abandoned: no client followed it")
        if status != 0:
            logger.warning(
                "command %r exited with status %d: %s",
                name,
                status,
                stderr.decode(errors="replace").strip()[-_STDERR_TAIL:],
                extra={"derivative": self.request.name},
            )
            raise CommandFailed(f"command {name!r} exited with status {status}")

    def _commit(self, temporary: str) -> None:
        """The output under its final name: fsync + ``os.replace`` on disk, else one save."""
        assert self._descriptor is not None
        store = self.request.store
        os.fsync(self._descriptor)
        if store.root is not None:
            os.fchmod(self._descriptor, 0o644)
            os.replace(temporary, resolve_under_root(store.root, self.request.name))
        else:
            with os.fdopen(os.dup(self._descriptor), "rb") as output:  # read in pieces
                output.seek(0)
                store.save(self.request.name, output)


def _command_name(spec: Spec, command: Command) -> str:
    """The registered name (``run=name``), the command's own, else the program's."""
    name = getattr(spec, "command", None) or command.name
    return str(name or os.path.basename(command.argv[0]))


async def _tail(stream: asyncio.StreamReader) -> bytes:
    """Read ``stream`` to its end, keeping the last bytes (for the log)."""
    kept = b""
    while chunk := await stream.read(CHUNK_SIZE):
        kept = (kept + chunk)[-_STDERR_TAIL:]
    return kept


def _write_all(descriptor: int | None, data: bytes) -> None:
    assert descriptor is not None
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


@contextlib.asynccontextmanager
async def _source_descriptor(request: StreamRequest) -> AsyncIterator[int]:
    """The source, open: the file that was stat'ed, or a copy of a remote one."""
    state = request.state
    if state.path is not None:
        descriptor = await in_thread(open_checked, state.path, state.identity)
    else:
        max_bytes = request.config.DERIVATIVES_MAX_SOURCE_BYTES
        async with spooled_source(request.source_storage, state, max_bytes) as copy:
            if copy.path is not None:
                descriptor = await in_thread(open_checked, copy.path, None)
            else:
                descriptor = await in_thread(_anonymous_file, copy.data or b"")
    try:
        yield descriptor
    finally:
        os.close(descriptor)


def _anonymous_file(data: bytes) -> int:
    """A descriptor of an unlinked temporary file holding ``data``, at offset 0."""
    descriptor, path = tempfile.mkstemp(prefix="fileresponse-source-", suffix=TEMP_SUFFIX)
    os.unlink(path)
    _write_all(descriptor, data)
    os.lseek(descriptor, 0, os.SEEK_SET)
    return descriptor


# ---------------------------------------------------------------- following a run


class _Follower:
    """A response's body: the run's bytes from the start, then live; raises if the run fails."""

    def __init__(self, run: _Run) -> None:
        self._run = run
        self._position = 0
        self._left = False
        self._loop = asyncio.get_running_loop()

    def __aiter__(self) -> _Follower:
        return self

    async def __anext__(self) -> bytes:
        run = self._run
        while not self._left:
            seen = run._changed
            if run.error is not None:
                self._leave()
                raise StreamCut(f"{run.request.name}: {run.error}")
            if self._position < run.size:
                chunk = await run.read(self._position)
                self._position += len(chunk)
                return chunk
            if run.finished:
                break
            await run.changed(seen)
        self._leave()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._leave()

    def close(self) -> None:
        """Django closes a response's content from a thread: leave on the event loop."""
        if not self._left:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to leave
                self._loop.call_soon_threadsafe(self._leave)

    def _leave(self) -> None:
        if not self._left:
            self._left = True
            self._run.leave()


_Key = tuple["DerivativeStore", str]

#: The runs of this process, per event loop, by derivative store and name (one each).
_runs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Key, _Run]] = (
    weakref.WeakKeyDictionary()
)


async def _join(request: StreamRequest) -> tuple[_Run, bool]:
    """The run of ``request``'s derivative in this process (started now if none), entered,
    and whether this call started it.

    At most ``DERIVATIVES_MAX_PENDING`` runs at a time per process and loop,
    and ``DERIVATIVES_MAX_RUNS`` of a kind (:mod:`.slots`); one more is
    :class:`ProcessingUnavailable` (``503``), as in the executor.
    """
    runs = _runs.setdefault(asyncio.get_running_loop(), {})
    key = (request.store, request.name)
    run = runs.get(key)
    started = run is None
    if run is None:
        if len(runs) >= request.config.DERIVATIVES_MAX_PENDING:
            raise ProcessingUnavailable(
                f"too many derivatives in progress ({len(runs)})", retry_after=2
            )
        slot = take_slot(request.processor.kind, request.config)
        run = runs[key] = _Run(request)
        task = asyncio.ensure_future(run.fly())
        task.add_done_callback(lambda done: _forget(runs, key, run, slot, done))
    run.enter()
    return run, started


async def _until_live(run: _Run) -> LiveFollower | None:
    """Wait until the entered ``run`` is live or over (it is left on an error), or return
    the follower of another process's run on this machine as soon as that is live."""
    request = run.request
    try:
        if request.store.root is not None:
            follower = await follow_elsewhere(
                request.store.root,
                request.name,
                float(request.config.DERIVATIVES_TIMEOUT),
                CHUNK_SIZE,
                elsewhere=lambda: not (run.live or run.finished or run.producing),
                changed=lambda: run.changed(run._changed),
            )
            if follower is not None:
                return follower
        while not (run.live or run.finished):
            await run.changed(run._changed)
    except BaseException:
        run.leave()
        raise
    return None


def _forget(
    runs: dict[_Key, _Run], key: _Key, run: _Run, slot: RunSlot, task: asyncio.Future[None]
) -> None:
    slot.release()
    if runs.get(key) is run:
        del runs[key]
    if not task.cancelled():
        task.exception()


async def open_stream(request: StreamRequest) -> Opened:
    """A body that follows the run of ``request`` from its first byte, or none.

    The run is this process's, or another's on this machine (its live file).
    No body: the derivative is stored (by a run that ended before any byte
    was followed, or by another process): serve the stored file. Raises the
    run's error when it failed before its first byte.
    """
    run, started = await _join(request)
    elsewhere = await _until_live(run)
    if elsewhere is not None:
        run.leave()  # this process's run waits on for the locks: it finds the file stored
        return Opened(elsewhere, collapsed=True)
    if run.live:
        return Opened(_Follower(run), collapsed=not started)
    run.leave()
    if run.error is not None:
        raise run.error
    return Opened(None, collapsed=not (started and run.made))


async def await_stream(request: StreamRequest) -> bool:
    """Wait until the run of ``request`` ends (the warm command); raise its error.

    ``True`` when this process ran it, ``False`` when another process did.
    """
    run, _ = await _join(request)
    try:
        while not run.finished:
            await run.changed(run._changed)
    finally:
        run.leave()
    if run.error is not None:
        raise run.error
    return run.made
