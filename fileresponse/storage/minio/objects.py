"""Requests on one object: its stat (a HEAD) and ranged GETs, sync and async.

Each request runs on the pooled client of its configuration (:mod:`.clients`)
and the SDKs' errors leave it as the library's (:mod:`.errors`). The storage,
its files and :class:`~fileresponse.sources.minio.MinioSource` all read
objects through here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from fileresponse.conf import MinioConfig
from fileresponse.sources.base import SourceStat

from .clients import AsyncClient, SyncClient, async_client, sync_client
from .errors import (
    NOT_FOUND_CODES,
    missing_bucket,
    stale_connection,
    translate_async_error,
    translate_sync_error,
)

if TYPE_CHECKING:
    import aiohttp
    from urllib3 import BaseHTTPResponse

__all__ = ["acall", "aopen_range", "astat_object", "call", "open_range", "stat_object"]

T = TypeVar("T")

#: Content types that tell nothing: the response guesses from the name instead.
_GENERIC_CONTENT_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})


def call(config: MinioConfig, operation: Callable[[SyncClient], T]) -> T:
    """``operation`` on the process's sync client of ``config``, its errors translated."""
    client = sync_client(config)
    try:
        return operation(client)
    except Exception as error:
        translated = translate_sync_error(config, error)
        if translated is None or translated is error:
            raise
        raise translated from error


async def acall(config: MinioConfig, operation: Callable[[AsyncClient], Awaitable[T]]) -> T:
    """``operation`` on the event loop's client of ``config``, its errors translated.

    A pooled connection that the server had closed is retried once.
    """
    client = await async_client(config)
    for attempt in (1, 2):
        try:
            return await operation(client)
        except Exception as error:
            if attempt == 1 and stale_connection(error):
                continue
            translated = translate_async_error(config, error)
            if translated is None or translated is error:
                raise
            raise translated from error
    raise AssertionError("unreachable")  # pragma: no cover


def stat_object(config: MinioConfig, key: str) -> SourceStat:
    """Size, modification time, ETag and content type of an object (a HEAD request)."""
    bucket = config.BUCKET

    def head(client: SyncClient) -> SourceStat:
        from minio.error import S3Error

        try:
            return _source_stat(client.minio.stat_object(bucket, key))
        except S3Error as error:
            if error.code in NOT_FOUND_CODES and bucket not in client.known_buckets:
                _require_bucket(config, client.minio.bucket_exists(bucket), client)
            raise

    return call(config, head)


async def astat_object(config: MinioConfig, key: str) -> SourceStat:
    """:func:`stat_object` without blocking: one pooled HEAD request."""
    bucket = config.BUCKET

    async def head(client: AsyncClient) -> SourceStat:
        from miniopy_async.error import S3Error

        try:
            return _source_stat(await client.minio.stat_object(bucket, key))
        except S3Error as error:
            if error.code in NOT_FOUND_CODES and bucket not in client.known_buckets:
                _require_bucket(config, await client.minio.bucket_exists(bucket), client)
            raise

    return await acall(config, head)


def _require_bucket(config: MinioConfig, exists: bool, client: SyncClient | AsyncClient) -> None:
    if not exists:
        raise missing_bucket(config)
    client.known_buckets.add(config.BUCKET)


def open_range(
    config: MinioConfig, key: str, start: int, length: int, etag: str | None = None
) -> BaseHTTPResponse:
    """A ranged GET of ``length > 0`` bytes; with ``etag``, only of that version.

    Read the body, then ``close()`` and ``release_conn()`` the response.
    """
    headers: dict[str, Any] | None = {"If-Match": f'"{etag}"'} if etag else None
    return call(
        config,
        lambda client: client.minio.get_object(
            config.BUCKET, key, offset=start, length=length, request_headers=headers
        ),
    )


async def aopen_range(
    config: MinioConfig, key: str, start: int, length: int, etag: str | None = None
) -> aiohttp.ClientResponse:
    """:func:`open_range` without blocking: the body is ``response.content``.

    ``release()`` the response after reading it all, ``close()`` it otherwise.
    """
    headers: dict[str, Any] | None = {"If-Match": f'"{etag}"'} if etag else None

    async def get(client: AsyncClient) -> aiohttp.ClientResponse:
        response: aiohttp.ClientResponse = await client.minio.get_object(
            config.BUCKET, key, offset=start, length=length, request_headers=headers
        )
        return response

    return await acall(config, get)


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
