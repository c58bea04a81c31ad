"""MinIO (or any S3-compatible store) as a Django Storage, and the clients that talk to it.

Two SDKs, imported in this module only and only when first used (the
``fileresponse[minio]`` extra):

- the sync Storage API (``save``, ``open``, ``exists``, ``delete``, ``size``,
  ``url``, ``listdir``, ``get_modified_time``) and responses under WSGI use
  the official ``minio`` SDK: one thread-safe client (a urllib3 pool) per
  process and configuration;
- the async counterparts (``asave``, ``aexists``, ...) and responses under
  ASGI use ``miniopy-async``: one client (an aiohttp pool) per event loop and
  configuration, reused by every request, closed when its loop shuts down
  (or by :func:`aclose_clients`).

Both clients have connect and read timeouts and do not retry, so a storage
that is down becomes :class:`~fileresponse.exceptions.SourceUnavailable`
(``503``) within ``CONNECT_TIMEOUT``, never a hang. Refused credentials and
a missing bucket become :class:`~fileresponse.exceptions.StorageError`
(``500``, logged) and fail ``manage.py check`` (:func:`check_minio_storages`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import logging
import mimetypes
import os
import ssl
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, BinaryIO, TypeVar, cast
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation
from django.core.files.base import File
from django.core.files.storage import Storage
from django.utils.deconstruct import deconstructible

from fileresponse.conf import MinioConfig, get_minio_config
from fileresponse.exceptions import (
    FileResponseError,
    SourceNotFound,
    SourceUnavailable,
    StorageError,
    UnsafePath,
)
from fileresponse.sources.base import SourceStat
from fileresponse.sources.filesystem import io_executor, relative_path_parts

if TYPE_CHECKING:
    import aiohttp
    import minio
    from urllib3 import BaseHTTPResponse

    from fileresponse.sources.minio import MinioSource

__all__ = [
    "AsyncClient",
    "MinioStorage",
    "SyncClient",
    "aclose_clients",
    "async_client",
    "check_minio_storages",
    "object_key",
    "sync_client",
]

logger = logging.getLogger("fileresponse")

T = TypeVar("T")

EXTRA = "fileresponse[minio]"
#: S3 keys are at most 1024 bytes of UTF-8.
MAX_KEY_BYTES = 1024
#: Part size of uploads of unknown length.
UPLOAD_PART_SIZE = 16 * 1024 * 1024
#: aiohttp's read buffer per response: a read-ahead of up to twice this per download.
READ_BUFFER_SIZE = 256 * 1024

#: Content types that tell nothing: the response guesses from the name instead.
_GENERIC_CONTENT_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})
_NOT_FOUND_CODES = frozenset(
    {"NoSuchKey", "NoSuchObject", "NotFound", "NoSuchVersion", "ResourceNotFound"}
)
_REFUSED_CODES = frozenset(
    {
        "AccessDenied",
        "AccountProblem",
        "AllAccessDisabled",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidToken",
        "SignatureDoesNotMatch",
    }
)
_UNAVAILABLE_CODES = frozenset(
    {
        "InternalError",
        "RequestTimeout",
        "ServiceUnavailable",
        "SlowDown",
        "XMinioServerNotInitialized",
    }
)


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


def _client_key(config: MinioConfig) -> tuple[object, ...]:
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
    key = (os.getpid(), *_client_key(config))
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


class AsyncClient:
    """A ``miniopy-async`` client with its own aiohttp pool, bound to one event loop."""

    def __init__(self, config: MinioConfig) -> None:
        import aiohttp
        from miniopy_async.api import Minio

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
        self.minio = Minio(
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
    key = _client_key(config)
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


# ---------------------------------------------------------------- errors


def _unavailable(config: MinioConfig, error: BaseException) -> SourceUnavailable:
    detail = str(error) or type(error).__name__
    return SourceUnavailable(
        f"MinIO at {config.endpoint_url} did not answer ({type(error).__name__}: {detail})"
    )


def _from_s3_code(config: MinioConfig, code: str | None, error: BaseException) -> FileResponseError:
    where = f"MinIO at {config.endpoint_url}"
    if code in _NOT_FOUND_CODES:
        return SourceNotFound(f"no object ({error})")
    if code == "NoSuchBucket":
        return StorageError(f"{where} has no bucket {config.BUCKET!r}")
    if code in _REFUSED_CODES:
        return StorageError(
            f"{where} refused access key {config.ACCESS_KEY!r} for bucket {config.BUCKET!r} "
            f"({code}): check ACCESS_KEY and SECRET_KEY"
        )
    if code in _UNAVAILABLE_CODES:
        return _unavailable(config, error)
    if code == "PreconditionFailed":
        return SourceUnavailable("the object changed while it was being served")
    return StorageError(f"{where} answered {code}: {error}")


def translate_sync_error(config: MinioConfig, error: Exception) -> FileResponseError | None:
    """The library's error for an error of the ``minio`` SDK or urllib3 (``None``: not ours)."""
    import urllib3
    from minio import error as sdk

    transport = (sdk.InvalidResponseError, urllib3.exceptions.HTTPError, OSError)
    return _translate(config, error, sdk.S3Error, sdk.ServerError, transport)


def translate_async_error(config: MinioConfig, error: Exception) -> FileResponseError | None:
    """The library's error for an error of ``miniopy-async`` or aiohttp (``None``: not ours)."""
    import aiohttp
    from miniopy_async import error as sdk

    transport = (sdk.InvalidResponseError, aiohttp.ClientError, TimeoutError, OSError)
    return _translate(config, error, sdk.S3Error, sdk.ServerError, transport)


def _translate(
    config: MinioConfig,
    error: Exception,
    s3_error: type[Exception],
    server_error: type[Exception],
    transport_errors: tuple[type[BaseException], ...],
) -> FileResponseError | None:
    """One mapping for both SDKs, which mirror each other's exception classes."""
    if isinstance(error, FileResponseError):
        return error
    if isinstance(error, s3_error):
        return _from_s3_code(config, error.code, error)  # type: ignore[attr-defined]
    if isinstance(error, server_error):
        status = error.status_code  # type: ignore[attr-defined]
        if status >= 500 or status == 429:
            return _unavailable(config, error)
        return StorageError(f"MinIO at {config.endpoint_url}: {error}")
    if isinstance(error, transport_errors):
        return _unavailable(config, error)
    return None


def _stale_connection(error: Exception) -> bool:
    """A pooled keep-alive connection the server had closed (worth one retry)."""
    import aiohttp

    if isinstance(error, aiohttp.ClientConnectorError):
        return False  # a new connection failed: the server is down
    return isinstance(error, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError))


def _source_stat(info: Any) -> SourceStat:
    """A SourceStat from a ``stat_object`` result of either SDK."""
    content_type: str | None = info.content_type
    if content_type and content_type.split(";")[0].strip().lower() in _GENERIC_CONTENT_TYPES:
        content_type = None
    modified: datetime | None = info.last_modified
    return SourceStat(
        size=int(info.size or 0),
        mtime=modified.timestamp() if modified is not None else 0.0,
        etag=info.etag or None,
        content_type=content_type,
    )


# ---------------------------------------------------------------- the storage


@deconstructible(path="fileresponse.storage.MinioStorage")
class MinioStorage(Storage):
    """Files in a MinIO (or S3-compatible) bucket, under an optional key prefix.

    Configured by ``settings.FILERESPONSE_MINIO`` and, winning over it, the
    ``OPTIONS`` of its ``STORAGES`` entry or keyword arguments (any case)::

        STORAGES = {
            "default": {
                "BACKEND": "fileresponse.storage.MinioStorage",
                "OPTIONS": {"endpoint": "minio:9000", "bucket": "media", "secure": False,
                            "access_key": "...", "secret_key": "..."},
            },
        }

    Keys are listed in :class:`fileresponse.conf.MinioConfig`; unknown keys
    and bad values raise ImproperlyConfigured. ``url()`` follows ``DELIVERY``:
    a public URL for ``public``, ``BASE_URL + name`` for ``stream`` when
    ``BASE_URL`` is set, else a presigned URL valid ``PRESIGNED_TTL`` seconds.

    Names are checked like paths (no ``..``, no absolute names) so that no
    name reaches outside ``PREFIX``. ``open()`` reads only (``save()``
    writes); the file streams the object with ranged GETs and can seek.
    """

    def __init__(self, **options: Any) -> None:
        require_sdks()
        self.config = get_minio_config(**options)

    def __repr__(self) -> str:
        config = self.config
        return f"<MinioStorage {config.endpoint_url}/{config.BUCKET}/{config.PREFIX}>"

    @property
    def bucket(self) -> str:
        return self.config.BUCKET

    def key(self, name: str) -> str:
        """The object key of a storage name; SuspiciousFileOperation for unsafe names."""
        try:
            return object_key(self.config.PREFIX, name)
        except SourceNotFound as error:
            raise SuspiciousFileOperation(f"unsafe storage name {name!r}: {error}") from error

    def source(self, relative_path: str) -> MinioSource:
        """A :class:`~fileresponse.sources.minio.MinioSource` for a URL path (checked)."""
        from fileresponse.sources.minio import MinioSource

        return MinioSource(self, relative_path)

    # -- key-level operations (the sources use these) ------------------------

    def _call(self, operation: Callable[[SyncClient], T]) -> T:
        client = sync_client(self.config)
        try:
            return operation(client)
        except Exception as error:
            translated = translate_sync_error(self.config, error)
            if translated is None or translated is error:
                raise
            raise translated from error

    async def _acall(self, operation: Callable[[AsyncClient], Awaitable[T]]) -> T:
        client = await async_client(self.config)
        for attempt in (1, 2):
            try:
                return await operation(client)
            except Exception as error:
                if attempt == 1 and _stale_connection(error):
                    continue
                translated = translate_async_error(self.config, error)
                if translated is None or translated is error:
                    raise
                raise translated from error
        raise AssertionError("unreachable")  # pragma: no cover

    def stat_object(self, key: str) -> SourceStat:
        """Size, modification time, ETag and content type of an object (a HEAD request)."""

        def head(client: SyncClient) -> SourceStat:
            from minio.error import S3Error

            try:
                return _source_stat(client.minio.stat_object(self.bucket, key))
            except S3Error as error:
                if error.code in _NOT_FOUND_CODES and self.bucket not in client.known_buckets:
                    self._require_bucket(client.minio.bucket_exists(self.bucket), client)
                raise

        return self._call(head)

    async def astat_object(self, key: str) -> SourceStat:
        """:meth:`stat_object` without blocking: one pooled HEAD request."""

        async def head(client: AsyncClient) -> SourceStat:
            from miniopy_async.error import S3Error

            try:
                return _source_stat(await client.minio.stat_object(self.bucket, key))
            except S3Error as error:
                if error.code in _NOT_FOUND_CODES and self.bucket not in client.known_buckets:
                    self._require_bucket(await client.minio.bucket_exists(self.bucket), client)
                raise

        return await self._acall(head)

    def _require_bucket(self, exists: bool, client: SyncClient | AsyncClient) -> None:
        if not exists:
            raise StorageError(f"MinIO at {self.config.endpoint_url} has no bucket {self.bucket!r}")
        client.known_buckets.add(self.bucket)

    def open_range(
        self, key: str, start: int, length: int, etag: str | None = None
    ) -> BaseHTTPResponse:
        """A ranged GET of ``length > 0`` bytes; with ``etag``, only of that version.

        Read the body, then ``close()`` and ``release_conn()`` the response.
        """
        headers: dict[str, Any] | None = {"If-Match": f'"{etag}"'} if etag else None
        return self._call(
            lambda client: client.minio.get_object(
                self.bucket, key, offset=start, length=length, request_headers=headers
            )
        )

    async def aopen_range(
        self, key: str, start: int, length: int, etag: str | None = None
    ) -> aiohttp.ClientResponse:
        """:meth:`open_range` without blocking: the body is ``response.content``.

        ``release()`` the response after reading it all, ``close()`` it otherwise.
        """
        headers: dict[str, Any] | None = {"If-Match": f'"{etag}"'} if etag else None

        async def get(client: AsyncClient) -> aiohttp.ClientResponse:
            response: aiohttp.ClientResponse = await client.minio.get_object(
                self.bucket, key, offset=start, length=length, request_headers=headers
            )
            return response

        return await self._acall(get)

    # -- the Storage API (sync) ----------------------------------------------

    def _stat_name(self, name: str) -> SourceStat:
        try:
            return self.stat_object(self.key(name))
        except SourceNotFound as error:
            raise FileNotFoundError(f"no object {name!r} in {self!r}") from error

    def _open(self, name: str, mode: str = "rb") -> File[bytes]:
        if mode not in ("r", "rb"):
            raise ValueError(f"MinioStorage opens objects for reading, not {mode!r}: use save()")
        key = self.key(name)
        stat = self._stat_name(name)
        reader = io.BufferedReader(_ObjectReader(self, key, stat), buffer_size=READ_BUFFER_SIZE)
        file = File(reader, name)
        file.size = stat.size
        return file

    def _save(self, name: str, content: File[Any]) -> str:
        key = self.key(name)
        data, length = _upload_body(content)
        content_type = _content_type(name, content)
        self._call(
            lambda client: client.minio.put_object(
                self.bucket,
                key,
                cast(BinaryIO, data),
                length,
                content_type=content_type,
                part_size=UPLOAD_PART_SIZE if length < 0 else 0,
            )
        )
        return name

    def exists(self, name: str) -> bool:
        try:
            self.stat_object(self.key(name))
        except SourceNotFound:
            return False
        return True

    def delete(self, name: str) -> None:
        if not name:
            raise ValueError("The name must be given to delete().")
        key = self.key(name)
        self._call(lambda client: client.minio.remove_object(self.bucket, key))

    def size(self, name: str) -> int:
        return self._stat_name(name).size

    def get_modified_time(self, name: str) -> datetime:
        return _storage_datetime(self._stat_name(name).mtime)

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        prefix = self._directory_prefix(path)
        objects = self._call(
            lambda client: list(client.minio.list_objects(self.bucket, prefix=prefix or None))
        )
        return _split_listing(prefix, (item.object_name or "" for item in objects))

    def _directory_prefix(self, path: str) -> str:
        if path.strip("/") in ("", "."):
            return f"{self.config.PREFIX}/" if self.config.PREFIX else ""
        return self.key(path) + "/"

    def url(self, name: str | None) -> str:
        name = name or ""
        if self.config.DELIVERY == "public":
            return self.public_url(name)
        if self.config.DELIVERY == "stream" and self.config.BASE_URL is not None:
            return self.config.BASE_URL.rstrip("/") + "/" + quote(name.lstrip("/"))
        return self.presigned_url(name)

    def public_url(self, name: str) -> str:
        """``PUBLIC_URL`` (or the endpoint's bucket URL) followed by the object key."""
        base = self.config.PUBLIC_URL or f"{self.config.endpoint_url}/{self.bucket}"
        return base.rstrip("/") + "/" + quote(self.key(name), safe="/~")

    def presigned_url(self, name: str) -> str:
        """A GET URL signed for ``PRESIGNED_TTL`` seconds (local, once the region is known)."""
        key = self.key(name)
        ttl = timedelta(seconds=self.config.PRESIGNED_TTL)
        return self._call(
            lambda client: client.minio.presigned_get_object(self.bucket, key, expires=ttl)
        )

    # -- the async counterparts ----------------------------------------------

    async def _astat_name(self, name: str) -> SourceStat:
        try:
            return await self.astat_object(self.key(name))
        except SourceNotFound as error:
            raise FileNotFoundError(f"no object {name!r} in {self!r}") from error

    async def aexists(self, name: str) -> bool:
        try:
            await self.astat_object(self.key(name))
        except SourceNotFound:
            return False
        return True

    async def asize(self, name: str) -> int:
        return (await self._astat_name(name)).size

    async def aget_modified_time(self, name: str) -> datetime:
        return _storage_datetime((await self._astat_name(name)).mtime)

    async def adelete(self, name: str) -> None:
        if not name:
            raise ValueError("The name must be given to delete().")
        key = self.key(name)

        async def remove(client: AsyncClient) -> None:
            await client.minio.remove_object(self.bucket, key)

        await self._acall(remove)

    async def alistdir(self, path: str) -> tuple[list[str], list[str]]:
        prefix = self._directory_prefix(path)

        async def listing(client: AsyncClient) -> list[str]:
            objects = client.minio.list_objects(self.bucket, prefix=prefix or None)
            return [item.object_name or "" async for item in objects]

        return _split_listing(prefix, await self._acall(listing))

    async def apresigned_url(self, name: str) -> str:
        """:meth:`presigned_url` on the event loop's client."""
        key = self.key(name)
        ttl = timedelta(seconds=self.config.PRESIGNED_TTL)

        async def presign(client: AsyncClient) -> str:
            url: str = await client.minio.presigned_get_object(self.bucket, key, expires=ttl)
            return url

        return await self._acall(presign)

    async def aurl(self, name: str) -> str:
        """:meth:`url` without blocking (presigning may need the bucket's region)."""
        if self.config.DELIVERY == "presigned" or (
            self.config.DELIVERY == "stream" and self.config.BASE_URL is None
        ):
            return await self.apresigned_url(name)
        return self.url(name)

    async def asave(
        self, name: str, content: File[Any] | bytes, max_length: int | None = None
    ) -> str:
        """:meth:`save` without blocking: the name check and file reads run in I/O threads."""
        from asgiref.sync import sync_to_async

        if isinstance(content, bytes):
            content = File(io.BytesIO(content), name)
        name = await sync_to_async(self._available_name, thread_sensitive=False)(name, max_length)
        key = self.key(name)
        loop = asyncio.get_running_loop()
        data, length = await loop.run_in_executor(io_executor(), _upload_body, content)
        content_type = _content_type(name, content)

        async def put(client: AsyncClient) -> None:
            await client.minio.put_object(
                self.bucket,
                key,
                cast(BinaryIO, _ThreadedReader(data)),  # it awaits what read() returns
                length,
                content_type=content_type,
                part_size=UPLOAD_PART_SIZE if length < 0 else 0,
            )

        await self._acall(put)
        return name

    def _available_name(self, name: str, max_length: int | None) -> str:
        from django.core.files.utils import validate_file_name

        validate_file_name(name, allow_relative_path=True)
        available = self.get_available_name(name, max_length=max_length)
        validate_file_name(available, allow_relative_path=True)
        return available


def _storage_datetime(timestamp: float) -> datetime:
    """Aware UTC with USE_TZ, naive local time without (as FileSystemStorage)."""
    from django.conf import settings

    if settings.USE_TZ:
        return datetime.fromtimestamp(timestamp, UTC)
    return datetime.fromtimestamp(timestamp)


def _split_listing(prefix: str, names: Iterable[str]) -> tuple[list[str], list[str]]:
    directories: list[str] = []
    files: list[str] = []
    for name in names:
        rest = name[len(prefix) :]
        if rest.endswith("/"):
            directories.append(rest.rstrip("/"))
        elif rest:
            files.append(rest)
    return directories, files


def _content_type(name: str, content: object) -> str:
    declared = getattr(content, "content_type", None)
    if isinstance(declared, str) and declared:
        return declared
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _upload_body(content: File[Any]) -> tuple[IO[bytes], int]:
    """A binary stream of ``content`` from its start, and its length (``-1``: unknown)."""
    if hasattr(content, "seek"):
        with contextlib.suppress(OSError, ValueError):  # not seekable: upload what is left
            content.seek(0)
    sample = content.read(0)
    if isinstance(sample, str):
        text: str = content.read()
        encoded = text.encode("utf-8")
        return io.BytesIO(encoded), len(encoded)
    try:
        size = content.size
    except (AttributeError, OSError, TypeError):
        size = None
    return content, size if isinstance(size, int) else -1


class _ThreadedReader:
    """A file whose ``read`` runs in the I/O threads (``miniopy-async`` awaits coroutines)."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    async def read(self, size: int = -1) -> bytes:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(io_executor(), self._file.read, size)


class _ObjectReader(io.RawIOBase):
    """Reads an object through one ranged GET at a time; seeking starts a new GET lazily."""

    def __init__(self, storage: MinioStorage, key: str, stat: SourceStat) -> None:
        super().__init__()
        self._storage = storage
        self._key = key
        self._stat = stat
        self._position = 0
        self._response: BaseHTTPResponse | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._stat.size}[whence]
        position = base + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        if position != self._position:
            self._drop_response()
            self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        remaining = self._stat.size - self._position
        if remaining <= 0:
            return 0
        if self._response is None:
            self._response = self._storage.open_range(
                self._key, self._position, remaining, self._stat.etag
            )
        try:
            data = self._response.read(min(len(buffer), remaining))
        except Exception as error:
            self._drop_response()
            translated = translate_sync_error(self._storage.config, error)
            if translated is None:
                raise
            raise translated from error
        if not data:
            self._drop_response()
            raise SourceUnavailable(f"object {self._key!r} ended early")
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _drop_response(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            response.close()
            response.release_conn()

    def close(self) -> None:
        self._drop_response()
        super().close()


# ---------------------------------------------------------------- system check


def configured_minio_storages() -> dict[str, MinioStorage]:
    """The MinioStorage instances of ``settings.STORAGES``, by alias."""
    from django.conf import settings
    from django.core.files.storage import storages
    from django.utils.module_loading import import_string

    found: dict[str, MinioStorage] = {}
    for alias, entry in (getattr(settings, "STORAGES", {}) or {}).items():
        backend = entry.get("BACKEND", "")
        try:
            backend_class = import_string(backend)
        except ImportError:
            continue
        if isinstance(backend_class, type) and issubclass(backend_class, MinioStorage):
            storage = storages[alias]
            assert isinstance(storage, MinioStorage)
            found[alias] = storage
    return found


def check_minio_storages() -> list[tuple[str, str, str]]:
    """Problems of the configured MinIO storages, as ``(level, id, message)``.

    One bounded request per distinct endpoint, credentials and bucket
    (``bucket_exists``, at most ``CONNECT_TIMEOUT`` + ``READ_TIMEOUT`` each,
    capped at 5 s): ``error`` for refused credentials or a missing bucket,
    ``warning`` for a storage that does not answer (it may come up later).
    """
    import dataclasses

    problems: list[tuple[str, str, str]] = []
    try:
        storages = configured_minio_storages()
    except ImproperlyConfigured as error:
        return [("error", "fileresponse.E010", str(error))]
    seen: set[tuple[object, ...]] = set()
    for alias, storage in storages.items():
        config = storage.config
        identity = (*_client_key(config), config.BUCKET)
        if identity in seen:
            continue
        seen.add(identity)
        bounded = dataclasses.replace(
            config,
            CONNECT_TIMEOUT=min(config.CONNECT_TIMEOUT, 5.0),
            READ_TIMEOUT=min(config.READ_TIMEOUT, 5.0),
        )
        where = f"STORAGES[{alias!r}] ({bounded.endpoint_url}, bucket {config.BUCKET!r})"
        client = sync_client(bounded)
        try:
            exists = client.minio.bucket_exists(config.BUCKET)
        except Exception as error:
            translated = translate_sync_error(bounded, error)
            if isinstance(translated, SourceUnavailable):
                problems.append(("warning", "fileresponse.W011", f"{where}: {translated}"))
            elif translated is not None:
                problems.append(("error", "fileresponse.E011", f"{where}: {translated}"))
            else:
                raise
            continue
        if not exists:
            problems.append(("error", "fileresponse.E012", f"{where}: the bucket does not exist"))
    return problems
