"""Real queues for the tests: a Redis server, a Celery worker, a Django Tasks worker.

Each runs in its own process (its own session), on a free loopback port or a
shared SQLite file, its output in a log file, with bounded start-up and stop.
Nothing here depends on pytest except the fixtures at the end; they skip with
a clear message where a component is missing (``redis-server``, celery, the
Tasks database backend). How to use them::

    def test_x(redis_server, tmp_path):       # RedisServer, one per session
        redis_server.url                      # redis://127.0.0.1:<port>/<n>
        redis_server.client().incr("key")     # a redis-py client (flushed between tests:
                                              # use the fixture ``redis_url`` for a fresh db)

    def test_y(celery_worker_factory, redis_url, tmp_path):
        environ = queue_environ(FILERESPONSE_TEST_CELERY_BROKER=redis_url, ...)
        worker = celery_worker_factory(environ)  # tasks of tests/project/celery.py's include
        worker.start()                        # celery -A tests.project.celery:app worker
        worker.pid                            # the process that runs the tasks (--pool=solo)
        worker.kill()                         # SIGKILL, then worker.start() again
        worker.log_tail()                     # what it logged ("received" lines per task)

    def test_z(tasks_worker_factory, tmp_path):
        database = tasks_database(tmp_path)   # a migrated SQLite file, shared by web and worker
        worker = tasks_worker_factory(tasks_environ(database, ...))
        worker.start()                        # manage.py db_worker (django-tasks-db)
        count_task_results(database)          # the tasks enqueued, by status

Workers and web servers (:mod:`tests.servers`) see the same environment:
``queue_environ`` / ``tasks_environ`` build it (``DJANGO_SETTINGS_MODULE``,
broker URL, database file, ``FILERESPONSE_TEST_*`` of the settings modules),
and ``tests/project/settings.py`` turns it into settings. Every started
process is stopped at the end of the test (factories) or session (Redis).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.servers import REPO_ROOT, free_port

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
#: Redis databases handed out one per test (``redis_url``), 1..15.
_REDIS_DATABASES = 15


def _environ(extra: Mapping[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO_ROOT), os.environ.get("PYTHONPATH")))),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def _stop(process: subprocess.Popen[bytes] | None, *, kill: bool = False) -> None:
    """End ``process`` and its session: SIGTERM (or SIGKILL), SIGKILL after STOP_TIMEOUT."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)
    # Whatever it started in its session (a command of a task) goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


# ---------------------------------------------------------------- Redis


def redis_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None
    )


@dataclass
class RedisServer:
    """A ``redis-server`` of its own on a free loopback port, no persistence."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    database: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{self.database}"

    def url_of(self, database: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("no redis-server executable (apt-get install redis-server)")
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory / "redis.log"
        self.process = subprocess.Popen(
            [
                binary,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
                *("--logfile", str(log), "--databases", str(_REDIS_DATABASES + 1)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {log.read_text(errors='replace')}")
            with contextlib.suppress(Exception):
                if self.client().ping():
                    return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("redis-server did not answer in time")

    def client(self, database: int | None = None) -> Any:
        import redis

        url = self.url if database is None else self.url_of(database)
        return redis.Redis.from_url(url, socket_timeout=5)

    def stop(self) -> None:
        _stop(self.process)


# ---------------------------------------------------------------- workers


@dataclass
class WorkerProcess:
    """A worker process started by ``command``; restartable, killable, its log kept."""

    name: str
    command: list[str]
    environ: dict[str, str]
    log_path: Path
    #: A line of the log that says it is ready (searched in what it logged since start).
    ready_marker: str
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _log_start: int = 0

    @property
    def pid(self) -> int:
        """The process that runs the tasks (``--pool=solo``: the started one)."""
        assert self.process is not None, f"{self.name} not started"
        return self.process.pid

    def start(self) -> None:
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO_ROOT,
                env=_environ(self.environ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self.ready_marker in self.log_since_start():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready in time:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the worker (and whatever its task started), at once."""
        _stop(self.process, kill=True)

    def stop(self) -> None:
        _stop(self.process)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return (
            self.log_path.read_bytes().decode("utf-8", "replace") if self.log_path.exists() else ""
        )

    def log_since_start(self) -> str:
        data = self.log_path.read_bytes() if self.log_path.exists() else b""
        return data[self._log_start :].decode("utf-8", "replace")

    def log_tail(self, size: int = 6000) -> str:
        return self.log()[-size:]


def celery_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("celery", "redis"))


def celery_worker(
    environ: Mapping[str, str], log_path: Path, *, queue: str = "celery"
) -> WorkerProcess:
    """A Celery worker of ``tests.project.celery:app``, one task at a time (``--pool=solo``,
    one slot: a task queued behind a running one waits for its end)."""
    command = [
        *(sys.executable, "-m", "celery", "-A", "tests.project.celery:app", "worker"),
        *("--pool", "solo", "--concurrency", "1", "--loglevel", "INFO", "-Q", queue),
        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        *("--hostname", f"tests-{os.getpid()}-{free_port()}@localhost"),
    ]
    return WorkerProcess("celery worker", command, dict(environ), log_path, ready_marker=" ready.")


def tasks_backend_available() -> bool:
    if importlib.util.find_spec("django_tasks_db") is None:
        return False
    return (
        importlib.util.find_spec("django.tasks") is not None
        or importlib.util.find_spec("django_tasks") is not None
    )


def tasks_worker(environ: Mapping[str, str], log_path: Path) -> WorkerProcess:
    """The Tasks database backend's worker (``db_worker``), polling every 0.1 s."""
    command = [
        *(sys.executable, "-m", "django", "db_worker", "--interval", "0.1"),
        *("--no-startup-delay", "--no-reload", "--verbosity", "2"),
    ]
    return WorkerProcess("db_worker", command, dict(environ), log_path, ready_marker="Starting")


# ---------------------------------------------------------------- environments


def queue_environ(
    settings_module: str = "tests.derivatives_site.settings", **extra: str
) -> dict[str, str]:
    """The environment shared by web servers and workers (``extra``: ``FILERESPONSE_TEST_*``)."""
    return {"DJANGO_SETTINGS_MODULE": settings_module, **extra}


def tasks_database(
    directory: Path, settings_module: str = "tests.derivatives_site.settings"
) -> Path:
    """A SQLite file migrated for the Tasks database backend, for web and worker processes."""
    database = directory / "tasks.sqlite3"
    environ = _environ(
        {
            "DJANGO_SETTINGS_MODULE": settings_module,
            "FILERESPONSE_TEST_DATABASE": str(database),
            "FILERESPONSE_TEST_TASKS": "db",
        }
    )
    completed = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--no-input", "--verbosity", "0"],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{completed.stdout!r}\n{completed.stderr!r}")
    return database


def tasks_environ(database: Path, **extra: str) -> dict[str, str]:
    """:func:`queue_environ` for the Tasks database backend on ``database``."""
    return queue_environ(
        FILERESPONSE_TEST_DATABASE=str(database), FILERESPONSE_TEST_TASKS="db", **extra
    )


def count_task_results(database: Path) -> dict[str, int]:
    """The tasks of the database backend in ``database``, by status (``READY``, ``SUCCESSFUL``)."""
    with contextlib.closing(sqlite3.connect(database, timeout=10)) as connection:
        rows = connection.execute(
            "SELECT status, COUNT(*) FROM django_tasks_database_dbtaskresult GROUP BY status"
        ).fetchall()
    return {str(status): int(count) for status, count in rows}


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``condition`` until true; AssertionError naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds:g}s waiting for {what}")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real Redis on a free loopback port for the session (skips without redis-server)."""
    if redis_binary() is None:
        pytest.skip("no redis-server executable: apt-get install redis-server")
    if importlib.util.find_spec("redis") is None:
        pytest.skip("no redis package: pip install 'fileresponse[celery]'")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


_next_database = iter(range(1, _REDIS_DATABASES + 1))


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A Redis database of :func:`redis_server` for this test alone, empty at the start."""
    database = next(_next_database, None)
    if database is None:  # more tests than databases: reuse one, flushed
        database = _REDIS_DATABASES
    redis_server.client(database).flushdb()
    return redis_server.url_of(database)


@pytest.fixture
def celery_worker_factory(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Build Celery workers (not started) from an environment; all stopped after the test."""
    if not celery_available():
        pytest.skip("no celery: pip install 'fileresponse[celery]'")
    workers: list[WorkerProcess] = []

    def build(environ: Mapping[str, str], *, queue: str = "celery") -> WorkerProcess:
        worker = celery_worker(environ, tmp_path / f"celery-{len(workers)}.log", queue=queue)
        workers.append(worker)
        return worker

    yield build
    for worker in workers:
        worker.stop()


@pytest.fixture
def tasks_worker_factory(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Build ``db_worker`` processes (not started) from an environment; stopped after."""
    if not tasks_backend_available():
        pytest.skip("no Tasks database backend: pip install 'fileresponse[tasks]'")
    workers: list[WorkerProcess] = []

    def build(environ: Mapping[str, str]) -> WorkerProcess:
        worker = tasks_worker(environ, tmp_path / f"db-worker-{len(workers)}.log")
        workers.append(worker)
        return worker

    yield build
    for worker in workers:
        worker.stop()
