"""The SDK clients of MinIO storages, pooled, and the object key of a name.

The sync client (``minio``, a urllib3 pool) is shared by the threads of a
process; the async client (``miniopy-async``, an aiohttp pool) by the tasks of
one event loop, and closed when that loop ends. Both SDKs (the
``fileresponse[minio]`` extra) are imported when a client is first made.
Clients have connect and read timeouts and do not retry.

The async client signs a request without a body (a HEAD, a GET) on the event
loop: over plain http the SDK hashes the empty body in a worker thread, a
thread hop per request (two per download: the stat and the GET) that costs
more than the request's own signing.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import inspect
import os
import ssl
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

from fileresponse.conf import MinioConfig
from fileresponse.exceptions import UnsafePath
from fileresponse.sources.filesystem import relative_path_parts

if TYPE_CHECKING:
    import minio
    import miniopy_async.api

__all__ = [
    "EXTRA",
    "READ_BUFFER_SIZE",
    "AsyncClient",
    "SyncClient",
    "aclose_clients",
    "async_client",
    "client_key",
    "object_key",
    "require_sdks",
    "sync_client",
]

EXTRA = "fileresponse[minio]"
#: S3 keys are at most 1024 bytes of UTF-8.
MAX_KEY_BYTES = 1024
#: aiohttp's read buffer per response: a read-ahead of up to twice this per download.
READ_BUFFER_SIZE = 256 * 1024


def require_sdks() -> None:
    """Raise ImproperlyConfigured, naming the extra, when an SDK is not installed."""
    sdks = ("minio", "miniopy_async")
    missing = [name for name in sdks if importlib.util.find_spec(name) is None]
    if missing:
        raise ImproperlyConfigured(
            f"MinioStorage needs the {' and '.join(missing)} package(s): pip install '{EXTRA}'"
        )


def object_key(prefix: str, relative_path: str) -> str:
    """The key of ``relative_path`` (a URL path or a storage name) under ``prefix``.

    Checked like a path under a root: ``..``, absolute paths, NUL bytes and
    backslashes raise :class:`~fileresponse.exceptions.UnsafePath`, empty and
    ``.`` segments are dropped, so no key outside the prefix can be named.
    """
    parts = relative_path_parts(relative_path)
    key = "/".join([prefix, *parts] if prefix else parts)
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise UnsafePath(f"object key longer than {MAX_KEY_BYTES} bytes")
    return key


def client_key(config: MinioConfig) -> tuple[object, ...]:
    """What makes two configurations share a client (the bucket and prefix do not)."""
    return (
        config.ENDPOINT,
        config.SECURE,
        config.ACCESS_KEY,
        config.SECRET_KEY,
        config.REGION,
        config.CONNECT_TIMEOUT,
        config.READ_TIMEOUT,
        config.MAX_CONNECTIONS,
    )


def _ssl_context() -> ssl.SSLContext:
    import certifi

    return ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or certifi.where())


# ---------------------------------------------------------------- sync clients


@dataclass(eq=False)
class SyncClient:
    """The ``minio`` SDK client of one configuration, shared by the threads of a process."""

    minio: minio.Minio
    #: Buckets seen to exist (a ``404`` on a key then means no such key).
    known_buckets: set[str] = field(default_factory=set)


_sync_clients: dict[tuple[object, ...], SyncClient] = {}
_sync_lock = threading.Lock()


def sync_client(config: MinioConfig) -> SyncClient:
    """The process's sync client for ``config`` (a new one after a fork)."""
    key = (os.getpid(), *client_key(config))
    client = _sync_clients.get(key)
    if client is None:
        with _sync_lock:
            client = _sync_clients.get(key)
            if client is None:
                client = _sync_clients[key] = SyncClient(_new_sync_minio(config))
    return client


def _new_sync_minio(config: MinioConfig) -> minio.Minio:
    import certifi
    import minio
    import urllib3

    pool = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=config.CONNECT_TIMEOUT, read=config.READ_TIMEOUT),
        maxsize=config.MAX_CONNECTIONS,
        # No retries: a storage that is down answers 503 now, not after backoffs.
        retries=False,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
    )
    return minio.Minio(
        config.ENDPOINT,
        access_key=config.ACCESS_KEY or None,
        secret_key=config.SECRET_KEY or None,
        secure=config.SECURE,
        region=config.REGION,
        http_client=pool,
    )


# ---------------------------------------------------------------- async clients


#: The ``x-amz-content-sha256`` of an empty body.
_EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()

_async_minio_cached: type[miniopy_async.api.Minio] | None = None


def _async_minio() -> type[miniopy_async.api.Minio]:
    """``miniopy_async.Minio``, with bodiless requests signed without a thread hop.

    The SDK's ``_build_headers`` hashes the body with ``asyncio.to_thread``
    over plain http, even when there is none. For ``body is None`` the
    subclass asks it for the headers of an unsigned request (the same ones,
    without the signing headers: no hash, no thread) and adds the two it
    would have added: the hash of the empty body and the session token. An
    SDK whose ``_build_headers`` is not the known coroutine gets no subclass.
    """
    global _async_minio_cached
    if _async_minio_cached is not None:
        return _async_minio_cached
    from miniopy_async.api import Minio

    known = getattr(Minio, "_build_headers", None)
    if not (inspect.iscoroutinefunction(known) and len(inspect.signature(known).parameters) == 5):
        _async_minio_cached = Minio
        return Minio

    class _Minio(Minio):
        async def _build_headers(
            self, host: str, headers: Any, body: Any, creds: Any
        ) -> tuple[dict[str, str], datetime]:
            base_url = getattr(self, "_base_url", None)
            if body is not None or creds is None or getattr(base_url, "is_https", True):
                built: tuple[dict[str, str], datetime] = await super()._build_headers(
                    host, headers, body, creds
                )
                return built
            unsigned, date = await super()._build_headers(host, headers, None, None)
            unsigned["x-amz-content-sha256"] = _EMPTY_BODY_SHA256
            if creds.session_token:
                unsigned["X-Amz-Security-Token"] = creds.session_token
            return unsigned, date

    _async_minio_cached = _Minio
    return _Minio


class AsyncClient:
    """A ``miniopy-async`` client with its own aiohttp pool, bound to one event loop."""

    def __init__(self, config: MinioConfig) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=config.MAX_CONNECTIONS, ssl=_ssl_context() if config.SECURE else True
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=config.CONNECT_TIMEOUT,
                sock_connect=config.CONNECT_TIMEOUT,
                sock_read=config.READ_TIMEOUT,
            ),
            auto_decompress=False,
            read_bufsize=READ_BUFFER_SIZE,
        )
        self.minio = _async_minio()(
            config.ENDPOINT,
            access_key=config.ACCESS_KEY or None,
            secret_key=config.SECRET_KEY or None,
            secure=config.SECURE,
            region=config.REGION,
            session=self.session,
        )
        #: Buckets seen to exist (a ``404`` on a key then means no such key).
        self.known_buckets: set[str] = set()

    async def aclose(self) -> None:
        await self.session.close()


@dataclass(eq=False)
class _LoopClients:
    clients: dict[tuple[object, ...], AsyncClient] = field(default_factory=dict)
    closer: AsyncGenerator[None] | None = None


_loop_clients: dict[asyncio.AbstractEventLoop, _LoopClients] = {}
_loop_lock = threading.Lock()


async def async_client(config: MinioConfig) -> AsyncClient:
    """The running event loop's client for ``config``, created on first use."""
    loop = asyncio.get_running_loop()
    key = client_key(config)
    entry = _loop_clients.get(loop)
    client = None if entry is None else entry.clients.get(key)
    if client is not None:
        return client
    with _loop_lock:
        for stale in [other for other in _loop_clients if other.is_closed()]:
            del _loop_clients[stale]
        entry = _loop_clients.setdefault(loop, _LoopClients())
    # No await between the lookup and this line: one client per loop and key.
    client = entry.clients[key] = AsyncClient(config)
    if entry.closer is None:
        # asyncio.run() (and uvicorn, asgiref, pytest-asyncio) close the
        # loop's async generators when it ends: this parked one then closes
        # the clients, so no aiohttp session outlives its loop.
        entry.closer = _close_with_loop(loop, entry)
        await anext(entry.closer)
    return client


async def _close_with_loop(
    loop: asyncio.AbstractEventLoop, entry: _LoopClients
) -> AsyncGenerator[None]:
    try:
        yield
    finally:
        with _loop_lock:
            if _loop_clients.get(loop) is entry:
                del _loop_clients[loop]
        clients = list(entry.clients.values())
        entry.clients.clear()
        for client in clients:
            await client.aclose()


async def aclose_clients() -> None:
    """Close the running event loop's MinIO clients now (the next use makes new ones)."""
    entry = _loop_clients.get(asyncio.get_running_loop())
    if entry is not None and entry.closer is not None:
        await entry.closer.aclose()
