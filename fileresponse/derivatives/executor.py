"""Where processing runs: off the event loop, in a bounded pool.

The default, :class:`ProcessPoolJobExecutor`, keeps one pool of worker
processes per server process, created on first use (so after any fork of a
pre-forking server such as gunicorn) with the ``forkserver`` start method (no
fork of a process that runs threads and an event loop). At most
``DERIVATIVES_MAX_PENDING`` jobs wait or run per server process, and at most
``DERIVATIVES_MAX_RUNS[kind]`` of a kind (:mod:`.slots`); one more gets
:class:`~fileresponse.derivatives.exceptions.ProcessingUnavailable` (``503``
with ``Retry-After``) instead of an unbounded queue.

A worker that dies (killed, out of memory, a crash in a C library) breaks the
pool: the job that was running gets ``503``, the pool is replaced, the next
job runs in fresh workers. A job over ``DERIVATIVES_TIMEOUT`` gets ``503``
and its workers are ended.

When the server process stops, its workers are ended first, whatever the
server: at the ASGI lifespan shutdown (:func:`close_executors`, called by
:class:`~fileresponse.handlers.AsyncFileASGIHandler`), else by exit hooks
that run before the interpreter waits for the pool, else (the process is
killed) when the workers see their lifeline pipe close.

As with any ``forkserver``/``spawn`` pool, a script run directly (``python
script.py``) that uses the process pool needs the ``if __name__ ==
"__main__":`` guard: workers import the main module. Servers (gunicorn,
uvicorn, ``manage.py``), Jupyter and pytest are fine as they are.

Executors are pluggable: ``DERIVATIVES_EXECUTOR`` is ``"process"`` (default),
``"thread"`` (threads of this process: tests, notebooks, development),
``"celery"`` or ``"tasks"`` (workers of a task queue: :mod:`.remote`), or the
dotted path of a class with the :class:`JobExecutor` protocol (or
:class:`~.remote.RemoteJobExecutor`'s), built with no arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import os
import signal
import threading
import warnings
import weakref
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection
from multiprocessing.util import Finalize
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from django.utils.module_loading import import_string

from fileresponse.conf import PerSettings, get_config

from .exceptions import ProcessingUnavailable
from .processors import processors, run_job
from .remote import RemoteJobExecutor
from .slots import take_slot

if TYPE_CHECKING:
    from .processors import Job, Result

__all__ = [
    "REMOTE_EXECUTORS",
    "JobExecutor",
    "ProcessPoolJobExecutor",
    "ThreadJobExecutor",
    "close_executors",
    "get_executor",
    "reset_executor",
]

#: Worker processes are replaced after this many jobs (bounds memory fragmentation).
MAX_TASKS_PER_CHILD = 200


@runtime_checkable
class JobExecutor(Protocol):
    """Runs processing jobs off the event loop."""

    async def run(self, job: Job) -> Result:
        """The result of ``job``; raises its ``ProcessingError``, or ``ProcessingUnavailable``."""
        ...

    def shutdown(self) -> None:
        """Stop the workers (the executor may be used again: it starts new ones)."""
        ...


class _PoolJobExecutor:
    """The bounded, self-healing part shared by the process and thread executors."""

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        max_pending: int | None = None,
        timeout: float | None = None,
    ) -> None:
        config = get_config()
        self.max_workers = max_workers or config.DERIVATIVES_WORKERS or _default_workers()
        self.max_pending = max_pending or config.DERIVATIVES_MAX_PENDING
        self.timeout = timeout or float(config.DERIVATIVES_TIMEOUT)
        self._lock = threading.Lock()
        self._pool: Executor | None = None
        self._pool_pid = 0
        self._pending = 0

    def _new_pool(self) -> Executor:
        raise NotImplementedError

    def _current_pool(self) -> Executor:
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():
                # A pool inherited through fork belongs to the parent: start ours.
                self._pool = self._new_pool()
                self._pool_pid = os.getpid()
                _running.add(self)
                _register_exit_hooks()
            return self._pool

    def _take_pool(self) -> Executor | None:
        """Forget the pool; return it if this process started it (else it is the parent's)."""
        with self._lock:
            pool, self._pool = self._pool, None
            return pool if pool is not None and self._pool_pid == os.getpid() else None

    def _discard_pool(self, pool: Executor, *, kill: bool) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        if kill:
            _kill_workers(pool)
        pool.shutdown(wait=False, cancel_futures=True)
        self._end_workers(pool)

    def _end_workers(self, pool: Executor) -> None:
        """Hook: make the workers of ``pool`` exit now, whatever they run (threads cannot)."""

    async def run(self, job: Job) -> Result:
        with self._lock:
            if self._pending >= self.max_pending:
                raise ProcessingUnavailable(
                    f"too many derivatives in progress ({self._pending})", retry_after=2
                )
            self._pending += 1
        try:
            with take_slot(_kind_of(job), get_config()):
                return await self._run(job)
        finally:
            with self._lock:
                self._pending -= 1

    async def _run(self, job: Job) -> Result:
        pool = self._current_pool()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(pool, run_job, job)
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            self._discard_pool(pool, kill=True)
            raise ProcessingUnavailable(f"processing took longer than {self.timeout:g}s") from None
        except BrokenProcessPool:
            self._discard_pool(pool, kill=False)
            raise ProcessingUnavailable("a processing worker died; try again") from None

    def shutdown(self) -> None:
        """Stop the workers once the jobs they run are done; queued jobs are cancelled."""
        pool = self._take_pool()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            self._end_workers(pool)

    def close(self) -> None:
        """Stop the workers now, abandoning their jobs: this process is stopping.

        Nobody waits for those jobs any more (the server has finished or cut
        its requests), and an exit must not wait for a long run.
        """
        pool = self._take_pool()
        if pool is not None:
            self._end_workers(pool)
            pool.shutdown(wait=True, cancel_futures=True)


class ProcessPoolJobExecutor(_PoolJobExecutor):
    """A pool of worker processes (``forkserver`` where available), per server process.

    Each worker holds the read end of a pipe whose only write end stays in the
    server process: when that process dies, even by ``SIGKILL`` (a worker
    timeout of gunicorn), the workers see the end of the pipe and exit, rather
    than wait for jobs forever.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lifelines: dict[int, Connection] = {}
        config = get_config()
        self._preload = [module for each in processors() for module in each.preload(config)]

    def _new_pool(self) -> Executor:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if context.get_start_method() == "forkserver":
            # Workers fork from a server that has imported the engine once (a failed
            # import there is ignored: the job then reports it).
            context.set_forkserver_preload(self._preload)
        reader, writer = context.Pipe(duplex=False)
        pool = ProcessPoolExecutor(
            max_workers=self.max_workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(reader,),
            max_tasks_per_child=MAX_TASKS_PER_CHILD,
        )
        self._lifelines[id(pool)] = writer
        return pool

    def _end_workers(self, pool: Executor) -> None:
        # Their lifeline threads see the end of the pipe and exit the workers at once.
        writer = self._lifelines.pop(id(pool), None)
        if writer is not None:
            writer.close()

    @property
    def worker_pids(self) -> list[int]:
        """The worker processes now running (for tests and monitoring)."""
        pool = self._pool
        processes = getattr(pool, "_processes", None) or {}
        return [process.pid for process in list(processes.values()) if process.is_alive()]


class ThreadJobExecutor(_PoolJobExecutor):
    """Threads of this process: no start-up cost, but CPU work competes with the server."""

    def _new_pool(self) -> Executor:
        return ThreadPoolExecutor(
            max_workers=self.max_workers, thread_name_prefix="fileresponse-derivatives"
        )


def _init_worker(lifeline: Connection) -> None:
    """Set a worker process up.

    - It exits when the server process that owns the pool is gone (``lifeline``).
    - It ignores ``SIGINT``: Ctrl-C reaches the whole process group, and the
      server, which owns the workers, ends them (no ``KeyboardInterrupt``
      traceback from each worker).
    - The jobs' own pixel limit replaces Pillow's global one: each job checks
      ``max_source_pixels`` from the header before decoding (in threads of the
      server process, Pillow's ``MAX_IMAGE_PIXELS`` is left alone). Without
      Pillow (the libvips engine alone) there is nothing to set.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_exit_with_owner, args=(lifeline,), name="fileresponse-lifeline", daemon=True
    ).start()
    try:
        from PIL import Image
    except ImportError:
        return
    Image.MAX_IMAGE_PIXELS = None
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def _exit_with_owner(lifeline: Connection) -> None:
    """Block until the owner's end of the pipe closes, then end this worker at once."""
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv_bytes()
    os._exit(0)


def _kill_workers(pool: Executor) -> None:
    """End the processes of a process pool (the stdlib has no API for it before 3.14)."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        if process.is_alive():
            process.kill()


@functools.cache
def _kind_of_processor(dotted_path: str) -> str:
    try:
        processor = import_string(dotted_path)
    except ImportError:
        return ""  # the worker reports it
    return str(getattr(processor, "kind", ""))


def _kind_of(job: Job) -> str:
    """The kind of the processor that runs ``job`` (its slots: :mod:`.slots`)."""
    return _kind_of_processor(job.processor)


def _default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


# ---------------------------------------------------------------- ending with the process

#: The executors of this process that have started a pool.
_running: weakref.WeakSet[_PoolJobExecutor] = weakref.WeakSet()
_hooks_pid = 0


def close_executors() -> None:
    """End every processing worker of this process now: the server is stopping.

    Called at the ASGI lifespan shutdown and by the exit hooks; jobs still
    running are abandoned (see :meth:`_PoolJobExecutor.close`). A custom
    executor (``DERIVATIVES_EXECUTOR``) gets its ``shutdown()``. Executors
    start new workers if used again.
    """
    for executor in list(_running):
        executor.close()
    custom = get_executor.peek()
    if custom is not None and not isinstance(custom, _PoolJobExecutor):
        custom.shutdown()


def _register_exit_hooks() -> None:
    """Make sure an exit of this process ends its pools before it waits for them.

    A process pool stops its workers from an exit hook of its own that the
    interpreter runs, with the threads' hooks, once the main thread is done;
    until then the workers wait for jobs. Two exit paths wait for the workers
    before that hook runs, and would wait for ever:

    - ``multiprocessing`` joins the children of a process that exits (in a
      worker process started by ``multiprocessing`` on Python < 3.13, such as
      granian's workers, even before the threads' hooks), and the pool's
      workers are such children; its finalizers of priority >= 0 run first;
    - the threads' hooks run last registered first, and the pool's own,
      registered when ``concurrent.futures.process`` was imported, waits for
      the jobs that run, however long.

    So :func:`close_executors` is both a ``multiprocessing`` finalizer and a
    threads' exit hook, registered after the pool module's (once per process:
    a forked child registers its own).
    """
    global _hooks_pid
    if _hooks_pid == os.getpid():
        return
    _hooks_pid = os.getpid()
    Finalize(None, close_executors, exitpriority=100)
    # threading._register_atexit is private: the hook concurrent.futures uses for its
    # own pools, and the only one that runs before theirs (atexit runs after).
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        with contextlib.suppress(RuntimeError):  # the interpreter is exiting already
            register(close_executors)


def _shutdown(executor: JobExecutor | RemoteJobExecutor) -> None:
    executor.shutdown()


def reset_executor() -> None:
    """Shut the executor down and forget it (settings changed, tests)."""
    get_executor.reset()


#: The executors of task queues, by name: their modules import the queue's SDK.
REMOTE_EXECUTORS = {
    "celery": "fileresponse.derivatives.celery_executor.CeleryExecutor",
    "tasks": "fileresponse.derivatives.tasks_executor.TasksExecutor",
}


def _build_executor() -> JobExecutor | RemoteJobExecutor:
    """The executor of this process, built from ``DERIVATIVES_EXECUTOR`` on first use."""
    choice = get_config().DERIVATIVES_EXECUTOR
    if choice == "process":
        return ProcessPoolJobExecutor()
    if choice == "thread":
        return ThreadJobExecutor()
    executor = import_string(REMOTE_EXECUTORS.get(choice, choice))()
    if not isinstance(executor, JobExecutor | RemoteJobExecutor):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"DERIVATIVES_EXECUTOR {choice!r} has no async run(job) (or produce(task, store))"
            " and shutdown()"
        )
    return executor


#: The executor of this process; shut down and built again when ``FILERESPONSE`` changes.
get_executor: PerSettings[JobExecutor | RemoteJobExecutor] = PerSettings(
    _build_executor, ("FILERESPONSE",), close=_shutdown
)
