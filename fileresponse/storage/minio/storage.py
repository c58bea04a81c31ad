"""MinioStorage: the Django Storage API on a MinIO (or S3-compatible) bucket, sync and async.

The sync methods (``save``, ``open``, ``exists``, ...) use the process's
``minio`` client, their ``a``-prefixed twins the event loop's
``miniopy-async`` client (:mod:`.clients`). It also tells the views how its
files are delivered (:class:`~fileresponse.storage.delivery.DeliveringStorage`).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import quote

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import File
from django.core.files.storage import Storage
from django.utils.deconstruct import deconstructible

from fileresponse.conf import DELIVERY_MODES, get_minio_config
from fileresponse.exceptions import SourceNotFound
from fileresponse.sources.base import SourceStat
from fileresponse.sources.minio import MinioSource
from fileresponse.threads import in_thread

from . import objects
from .clients import READ_BUFFER_SIZE, AsyncClient, object_key, require_sdks
from .files import UPLOAD_PART_SIZE, ObjectReader, ThreadedReader, upload_body, upload_content_type

if TYPE_CHECKING:
    import aiohttp
    from urllib3 import BaseHTTPResponse

__all__ = ["MinioStorage"]


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

    # -- delivery (fileresponse.storage.delivery.DeliveringStorage) -----------

    @property
    def delivery(self) -> str:
        """How the views deliver this storage's files by default: its ``DELIVERY``."""
        return self.config.DELIVERY

    def source(self, relative_path: str) -> MinioSource:
        """A :class:`~fileresponse.sources.minio.MinioSource` for a URL path (checked)."""
        return MinioSource(self, relative_path)

    async def adelivery_url(self, name: str, mode: str) -> str:
        """The URL of ``name`` when delivered in ``mode`` (without blocking).

        ``presigned``: signed for ``PRESIGNED_TTL`` seconds; ``public``:
        :meth:`public_url`; ``stream``: ``BASE_URL + name``, else presigned.
        """
        if mode == "public":
            return self.public_url(name)
        if mode == "stream" and self.config.BASE_URL is not None:
            return _under(self.config.BASE_URL, name)
        if mode in DELIVERY_MODES:
            return await self.apresigned_url(name)
        raise ValueError(f"delivery must be one of {', '.join(DELIVERY_MODES)}, not {mode!r}")

    # -- key-level operations (fileresponse.storage.minio.objects) -----------

    def stat_object(self, key: str) -> SourceStat:
        """Size, modification time, ETag and content type of an object (a HEAD request)."""
        return objects.stat_object(self.config, key)

    async def astat_object(self, key: str) -> SourceStat:
        """:meth:`stat_object` without blocking: one pooled HEAD request."""
        return await objects.astat_object(self.config, key)

    def open_range(
        self, key: str, start: int, length: int, etag: str | None = None
    ) -> BaseHTTPResponse:
        """A ranged GET of ``length > 0`` bytes; with ``etag``, only of that version.

        Read the body, then ``close()`` and ``release_conn()`` the response.
        """
        return objects.open_range(self.config, key, start, length, etag)

    async def aopen_range(
        self, key: str, start: int, length: int, etag: str | None = None
    ) -> aiohttp.ClientResponse:
        """:meth:`open_range` without blocking: the body is ``response.content``.

        ``release()`` the response after reading it all, ``close()`` it otherwise.
        """
        return await objects.aopen_range(self.config, key, start, length, etag)

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
        reader = ObjectReader(self.config, key, stat)
        file = File(io.BufferedReader(reader, buffer_size=READ_BUFFER_SIZE), name)
        file.size = stat.size
        return file

    def _save(self, name: str, content: File[Any]) -> str:
        key = self.key(name)
        data, length = upload_body(content)
        content_type = upload_content_type(name, content)
        objects.call(
            self.config,
            lambda client: client.minio.put_object(
                self.bucket,
                key,
                cast(BinaryIO, data),
                length,
                content_type=content_type,
                part_size=UPLOAD_PART_SIZE if length < 0 else 0,
            ),
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
        objects.call(self.config, lambda client: client.minio.remove_object(self.bucket, key))

    def size(self, name: str) -> int:
        return self._stat_name(name).size

    def get_modified_time(self, name: str) -> datetime:
        return _storage_datetime(self._stat_name(name).mtime)

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        prefix = self._directory_prefix(path)
        listed = objects.call(
            self.config,
            lambda client: list(client.minio.list_objects(self.bucket, prefix=prefix or None)),
        )
        return _split_listing(prefix, (item.object_name or "" for item in listed))

    def _directory_prefix(self, path: str) -> str:
        if path.strip("/") in ("", "."):
            return f"{self.config.PREFIX}/" if self.config.PREFIX else ""
        return self.key(path) + "/"

    def url(self, name: str | None) -> str:
        name = name or ""
        if self.config.DELIVERY == "public":
            return self.public_url(name)
        if self.config.DELIVERY == "stream" and self.config.BASE_URL is not None:
            return _under(self.config.BASE_URL, name)
        return self.presigned_url(name)

    def public_url(self, name: str) -> str:
        """``PUBLIC_URL`` (or the endpoint's bucket URL) followed by the object key."""
        base = self.config.PUBLIC_URL or f"{self.config.endpoint_url}/{self.bucket}"
        return base.rstrip("/") + "/" + quote(self.key(name), safe="/~")

    def presigned_url(self, name: str) -> str:
        """A GET URL signed for ``PRESIGNED_TTL`` seconds (local, once the region is known)."""
        key = self.key(name)
        ttl = timedelta(seconds=self.config.PRESIGNED_TTL)
        return objects.call(
            self.config,
            lambda client: client.minio.presigned_get_object(self.bucket, key, expires=ttl),
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

        await objects.acall(self.config, remove)

    async def alistdir(self, path: str) -> tuple[list[str], list[str]]:
        prefix = self._directory_prefix(path)

        async def listing(client: AsyncClient) -> list[str]:
            listed = client.minio.list_objects(self.bucket, prefix=prefix or None)
            return [item.object_name or "" async for item in listed]

        return _split_listing(prefix, await objects.acall(self.config, listing))

    async def apresigned_url(self, name: str) -> str:
        """:meth:`presigned_url` on the event loop's client."""
        key = self.key(name)
        ttl = timedelta(seconds=self.config.PRESIGNED_TTL)

        async def presign(client: AsyncClient) -> str:
            url: str = await client.minio.presigned_get_object(self.bucket, key, expires=ttl)
            return url

        return await objects.acall(self.config, presign)

    async def aurl(self, name: str) -> str:
        """:meth:`url` without blocking (presigning may need the bucket's region)."""
        return await self.adelivery_url(name, self.config.DELIVERY)

    async def asave(
        self, name: str, content: File[Any] | bytes, max_length: int | None = None
    ) -> str:
        """:meth:`save` without blocking: the name check and file reads run in I/O threads."""
        from asgiref.sync import sync_to_async

        if isinstance(content, bytes):
            content = File(io.BytesIO(content), name)
        name = await sync_to_async(self._available_name, thread_sensitive=False)(name, max_length)
        key = self.key(name)
        data, length = await in_thread(upload_body, content)
        content_type = upload_content_type(name, content)

        async def put(client: AsyncClient) -> None:
            await client.minio.put_object(
                self.bucket,
                key,
                cast(BinaryIO, ThreadedReader(data)),  # it awaits what read() returns
                length,
                content_type=content_type,
                part_size=UPLOAD_PART_SIZE if length < 0 else 0,
            )

        await objects.acall(self.config, put)
        return name

    def _available_name(self, name: str, max_length: int | None) -> str:
        from django.core.files.utils import validate_file_name

        validate_file_name(name, allow_relative_path=True)
        available = self.get_available_name(name, max_length=max_length)
        validate_file_name(available, allow_relative_path=True)
        return available


def _under(base_url: str, name: str) -> str:
    """The URL of ``name`` under ``BASE_URL``."""
    return base_url.rstrip("/") + "/" + quote(name.lstrip("/"))


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
