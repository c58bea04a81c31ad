"""Real servers for the live tests: a media tree on disk and ASGI/WSGI servers in subprocesses.

Each server runs the Django project in ``tests/project`` with
``FILERESPONSE_TEST_MEDIA_ROOT`` pointing at a generated media tree, listens on a
free port of 127.0.0.1 and is stopped (terminated, then killed) when the pool
closes. Nothing here depends on pytest; ``tests/test_live.py`` wraps it in fixtures.
"""

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 5.0
START_ATTEMPTS = 2

BIG_FILE_SIZE = 10 * 1024 * 1024
NON_ASCII_NAME = "résumé 日本語.txt"
SECRET_MARKER = b"FILERESPONSE-SECRET-OUTSIDE-THE-ROOT"


# ---------------------------------------------------------------- media tree


@dataclass(frozen=True)
class MediaTree:
    """Files under ``root`` (served) and ``outside`` (never to be served)."""

    root: Path
    outside: Path
    files: dict[str, bytes]
    """Relative POSIX path under ``root`` -> content, for every regular file served."""

    @property
    def secret(self) -> Path:
        return self.outside / "secret.txt"


def build_media_tree(base: Path) -> MediaTree:
    """Write the media tree under ``base``: deterministic content, links out of the root."""
    root = base / "media"
    outside = base / "outside"
    files = {
        "big.bin": random.Random(20240521).randbytes(BIG_FILE_SIZE),
        "small.txt": b"".join(b"line %04d of a small text file\n" % n for n in range(40)),
        NON_ASCII_NAME: "contenu non ASCII: é ü 日本語\n".encode(),
        "nested/dir/deep.txt": b"deep inside the media root\n",
        "empty.txt": b"",
    }
    for relative, content in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    outside.mkdir(parents=True)
    (outside / "secret.txt").write_bytes(SECRET_MARKER + b"\n")
    (root / "escape.txt").symlink_to(outside / "secret.txt")
    (root / "escape_dir").symlink_to(outside, target_is_directory=True)
    return MediaTree(root=root, outside=outside, files=files)


# ---------------------------------------------------------------- server kinds


@dataclass(frozen=True)
class ServerKind:
    """How to start one server, and what it serves."""

    name: str
    handler: str
    """``patched`` (AsyncFileASGIHandler), ``stock`` (Django's ASGIHandler) or ``wsgi``."""
    command: Callable[[int], list[str]]
    """The argv for a given port."""
    serves_in_child: bool
    """True when a worker process (child of the started one) handles the requests."""
    env: tuple[tuple[str, str], ...] = ()
    """Environment variables of this kind's process."""

    @property
    def is_asgi(self) -> bool:
        return self.handler != "wsgi"


def _module(handler: str) -> str:
    return {
        "patched": "tests.project.asgi_patched:application",
        "stock": "tests.project.asgi_stock:application",
        "wsgi": "tests.project.wsgi:application",
    }[handler]


def _uvicorn(handler: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            *(sys.executable, "-m", "uvicorn", _module(handler)),
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--lifespan", "off", "--no-access-log", "--timeout-graceful-shutdown", "2"),
        ]

    return command


def _sendfile_uvicorn(handler: str, loop: str, *options: str) -> Callable[[int], list[str]]:
    """uvicorn's command line with the library's protocol (``python -m fileresponse.server``)."""

    def command(port: int) -> list[str]:
        return [
            *(sys.executable, "-m", "fileresponse.server", _module(handler)),
            *("--host", "127.0.0.1", "--port", str(port), "--loop", loop),
            *("--lifespan", "off", "--no-access-log", "--timeout-graceful-shutdown", "2"),
            *options,
        ]

    return command


def _gunicorn(handler: str, worker_class: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            *(sys.executable, "-m", "gunicorn", _module(handler)),
            *("--bind", f"127.0.0.1:{port}", "--workers", "1", "--worker-class", worker_class),
            *("--graceful-timeout", "2", "--timeout", "60", "--log-level", "warning"),
        ]

    return command


def _granian(handler: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            *(sys.executable, "-m", "granian", "--interface", "asgi"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
            *("--no-access-log", "--workers-kill-timeout", "2", _module(handler)),
        ]

    return command


SERVER_KINDS = {
    kind.name: kind
    for kind in (
        ServerKind("uvicorn-patched", "patched", _uvicorn("patched"), serves_in_child=False),
        ServerKind("uvicorn-stock", "stock", _uvicorn("stock"), serves_in_child=False),
        ServerKind(
            "gunicorn-uvicorn",
            "patched",
            _gunicorn("patched", "uvicorn_worker.UvicornWorker"),
            serves_in_child=True,
        ),
        ServerKind(
            "gunicorn-sendfile",
            "patched",
            _gunicorn("patched", "fileresponse.workers.UvicornWorker"),
            serves_in_child=True,
        ),
        ServerKind(
            "uvicorn-sendfile-asyncio",
            "patched",
            _sendfile_uvicorn("patched", "asyncio"),
            serves_in_child=False,
        ),
        ServerKind(
            "uvicorn-sendfile-uvloop",
            "patched",
            _sendfile_uvicorn("patched", "uvloop"),
            serves_in_child=False,
        ),
        ServerKind(
            "uvicorn-sendfile-header-timeout",
            "patched",
            _sendfile_uvicorn("patched", "uvloop", "--header-timeout", "1"),
            serves_in_child=False,
        ),
        ServerKind("granian", "patched", _granian("patched"), serves_in_child=True),
        ServerKind("gunicorn-wsgi", "wsgi", _gunicorn("wsgi", "sync"), serves_in_child=True),
    )
}


#: The library's worker and protocol (sendfile), on both event loops.
SENDFILE_SERVERS = ["gunicorn-sendfile", "uvicorn-sendfile-asyncio", "uvicorn-sendfile-uvloop"]
#: The kinds every live test runs on: the uvloop protocol is covered there by
#: gunicorn-sendfile (its loop is uvloop), the header timeout by its own tests.
ALL_SERVERS = [
    name
    for name in SERVER_KINDS
    if name not in ("uvicorn-sendfile-uvloop", "uvicorn-sendfile-header-timeout")
]
ASGI_SERVERS = [name for name in ALL_SERVERS if SERVER_KINDS[name].is_asgi]
PATCHED_SERVERS = [name for name in ALL_SERVERS if SERVER_KINDS[name].handler == "patched"]


# ---------------------------------------------------------------- running servers


class ServerStartError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveServer:
    """One running server; ``pid`` is the process that handles requests."""

    kind: ServerKind
    media: MediaTree
    log_path: Path
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _log_offset: int = 0

    @property
    def name(self) -> str:
        return self.kind.name

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def media_root(self) -> Path:
        return self.media.root

    @property
    def pid(self) -> int:
        """The serving process: the started one, or its single worker child."""
        assert self.process is not None, "server not started"
        if not self.kind.serves_in_child:
            return self.process.pid
        workers = psutil.Process(self.process.pid).children()
        if len(workers) != 1:
            raise ServerStartError(f"{self.name}: expected one worker, found {workers}")
        return workers[0].pid

    def start(self) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get(
                "DJANGO_SETTINGS_MODULE", "tests.project.settings"
            ),
            "FILERESPONSE_TEST_MEDIA_ROOT": str(self.media.root),
            "PYTHONPATH": os.pathsep.join(
                filter(None, (str(REPO_ROOT), os.environ.get("PYTHONPATH")))
            ),
            "PYTHONUNBUFFERED": "1",
            **dict(self.kind.env),
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.kind.command(self.port),
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self._answers() and (not self.kind.serves_in_child or self._has_one_worker()):
                return
            time.sleep(0.05)
        raise ServerStartError(f"{self.name} did not answer in time:\n{self.log_tail()}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=2) as connection:
                connection.sendall(
                    b"GET /__ready__ HTTP/1.1\r\nHost: ready\r\nConnection: close\r\n\r\n"
                )
                return connection.recv(12).startswith(b"HTTP/1.")
        except OSError:
            return False

    def _has_one_worker(self) -> bool:
        assert self.process is not None
        return len(psutil.Process(self.process.pid).children()) == 1

    def stop(self) -> None:
        """Terminate the process group, kill what is left after ``SHUTDOWN_TIMEOUT``."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            family = [psutil.Process(self.process.pid)]
            family += family[0].children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        self.process.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs(family, timeout=SHUTDOWN_TIMEOUT)
        for process in alive:
            process.kill()
        psutil.wait_procs(alive, timeout=SHUTDOWN_TIMEOUT)
        self.process.wait(timeout=SHUTDOWN_TIMEOUT)

    def log_tail(self, size: int = 4000) -> str:
        data = self.log_path.read_bytes()
        return data[-size:].decode("utf-8", "replace")

    def new_log(self) -> str:
        """Log output written since the previous call."""
        data = self.log_path.read_bytes()
        fresh, self._log_offset = data[self._log_offset :], len(data)
        return fresh.decode("utf-8", "replace")


class ServerPool:
    """Starts servers on first use and stops them all on ``close``."""

    def __init__(self, media: MediaTree, log_dir: Path) -> None:
        self.media = media
        self.log_dir = log_dir
        self._servers: dict[str, LiveServer] = {}

    def get(self, name: str) -> LiveServer:
        """The running server ``name``, started now if needed (on another port if taken)."""
        if name not in self._servers:
            for attempt in range(1, START_ATTEMPTS + 1):
                log_path = self.log_dir / f"{name}.{attempt}.log"
                server = LiveServer(SERVER_KINDS[name], self.media, log_path)
                try:
                    server.start()
                except ServerStartError:
                    if attempt == START_ATTEMPTS:
                        raise
                else:
                    break
            self._servers[name] = server
        return self._servers[name]

    def running(self) -> list[LiveServer]:
        return list(self._servers.values())

    def close(self) -> None:
        for server in self._servers.values():
            server.stop()
        self._servers.clear()
