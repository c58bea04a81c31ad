"""Where background jobs run: threads of this process, a Celery worker, or a Tasks backend.

A job is a name of :data:`JOBS` and a list of strings (names and ids, never
file objects or bytes), so that every engine can carry it: ``local`` runs it
in :class:`LocalEngine`'s threads, ``celery`` sends the task
``fileresponse.run_job`` (:mod:`.celery_tasks`), ``tasks`` enqueues
:func:`.django_tasks.run_job` on the default Tasks backend. A job that fails
and may be tried again submits itself again, with a delay.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Protocol

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from fileresponse.conf import get_config

from .jobs import JOBS, run_job

__all__ = [
    "ENGINES",
    "JOBS",
    "CeleryEngine",
    "Engine",
    "LocalEngine",
    "TasksEngine",
    "engine_name",
    "get_engine",
    "reset_engines",
    "run_job",
    "submit",
]

logger = logging.getLogger("fileresponse.transfers")

#: The names of ``TRANSFERS_ENGINE`` (and of a QueuedStorage's ``engine`` option).
ENGINES = ("auto", "local", "celery", "tasks")


class Engine(Protocol):
    name: str

    def submit(self, job: str, arguments: Sequence[str], delay: float = 0) -> None: ...


class LocalEngine:
    """Threads of this process (``TRANSFERS_LOCAL_THREADS``); delays wait in timers.

    No broker and nothing to start: one machine's setup. What a process that
    dies was doing stays ``pending`` in its row, for ``fileresponse_transfers
    --retry`` (or the next attempt) to take up.
    """

    name = "local"

    def __init__(self, threads: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fileresponse-job")
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()
        self._running = 0
        self._idle = threading.Condition(self._lock)

    def submit(self, job: str, arguments: Sequence[str], delay: float = 0) -> None:
        with self._lock:
            self._running += 1
        if delay <= 0:
            self._pool.submit(self._run, job, list(arguments))
            return
        timer = threading.Timer(delay, self._after_delay, args=(job, list(arguments)))
        timer.daemon = True
        with self._lock:
            self._timers.add(timer)
        timer.start()

    def _after_delay(self, job: str, arguments: list[str]) -> None:
        with self._lock:
            self._timers = {timer for timer in self._timers if timer.is_alive()}
        self._pool.submit(self._run, job, arguments)

    def _run(self, job: str, arguments: list[str]) -> None:
        from django.db import connections

        try:
            run_job(job, arguments)
        except Exception:
            logger.exception("background job %s%r failed", job, tuple(arguments))
        finally:
            connections.close_all()
            with self._lock:
                self._running -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job runs, waits or is delayed here; ``False`` after ``timeout``."""
        with self._lock:
            return self._idle.wait_for(lambda: self._running == 0, timeout)

    def shutdown(self) -> None:
        with self._lock:
            timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)


class CeleryEngine:
    """Sends ``fileresponse.run_job`` to the project's Celery app (``fileresponse[celery]``).

    The workers import :mod:`fileresponse.storage.queued.celery_tasks`
    (``Celery(include=[...])`` or ``CELERY_IMPORTS``).
    """

    name = "celery"

    def __init__(self) -> None:
        try:
            import celery
        except ImportError as error:
            raise ImproperlyConfigured(
                "TRANSFERS_ENGINE 'celery' needs Celery: pip install 'fileresponse[celery]'"
            ) from error
        app_path = get_config().DERIVATIVES_CELERY_APP
        self._app = celery.current_app if app_path is None else import_string(app_path)

    def submit(self, job: str, arguments: Sequence[str], delay: float = 0) -> None:
        self._app.send_task(
            "fileresponse.run_job", args=[job, list(arguments)], countdown=delay or None
        )


class TasksEngine:
    """Enqueues :func:`fileresponse.storage.queued.django_tasks.run_job` (Django's Tasks)."""

    name = "tasks"

    def __init__(self) -> None:
        from .django_tasks import run_job as task

        self._task = task

    def submit(self, job: str, arguments: Sequence[str], delay: float = 0) -> None:
        from django.utils import timezone

        task = self._task
        if delay > 0 and task.get_backend().supports_defer:
            task = task.using(run_after=timezone.now() + timedelta(seconds=delay))
        task.enqueue(job, list(arguments))


def engine_name(choice: str | None = None) -> str:
    """The engine ``choice`` (default: ``TRANSFERS_ENGINE``) stands for.

    ``auto`` follows ``DERIVATIVES_EXECUTOR``: a site whose derivatives are
    made by Celery (or a Tasks backend) moves its files there too; else
    ``local``.
    """
    config = get_config()
    choice = choice or config.TRANSFERS_ENGINE
    if choice not in ENGINES:
        raise ImproperlyConfigured(
            f"transfer engine must be one of {', '.join(map(repr, ENGINES))}, not {choice!r}"
        )
    if choice == "auto":
        executor = config.DERIVATIVES_EXECUTOR
        return executor if executor in ("celery", "tasks") else "local"
    return choice


_engines: dict[tuple[int, str], Engine] = {}
_engines_lock = threading.Lock()


def get_engine(choice: str | None = None) -> Engine:
    """The engine of this process for ``choice`` (made on first use, again after a fork)."""
    name = engine_name(choice)
    key = (os.getpid(), name)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _build(name)
            _engines[key] = engine
        return engine


def _build(name: str) -> Engine:
    if name == "celery":
        return CeleryEngine()
    if name == "tasks":
        return TasksEngine()
    return LocalEngine(get_config().TRANSFERS_LOCAL_THREADS)


def submit(
    job: str, arguments: Sequence[str], *, delay: float = 0, engine: str | None = None
) -> None:
    """Run ``job`` in the background once the current transaction commits (now outside one)."""
    from django.db import transaction

    chosen = get_engine(engine)
    transaction.on_commit(lambda: chosen.submit(job, arguments, delay))


def reset_engines() -> None:
    """Forget this process's engines (the local one's threads end): tests, settings changes."""
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        if isinstance(engine, LocalEngine):
            with contextlib.suppress(Exception):
                engine.shutdown()
