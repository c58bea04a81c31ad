"""One translation of the MinIO SDKs' errors to the library's exceptions.

Both SDKs mirror each other's exception classes, so one mapping serves both:
a missing object is :class:`~fileresponse.exceptions.SourceNotFound`, a
storage that does not answer :class:`~fileresponse.exceptions.SourceUnavailable`
(``503``), refused credentials and a missing bucket
:class:`~fileresponse.exceptions.StorageError` (``500``, logged).
"""

from __future__ import annotations

from fileresponse.conf import MinioConfig
from fileresponse.exceptions import (
    FileResponseError,
    SourceNotFound,
    SourceUnavailable,
    StorageError,
)

__all__ = [
    "NOT_FOUND_CODES",
    "missing_bucket",
    "stale_connection",
    "translate_async_error",
    "translate_sync_error",
]

#: S3 error codes of a key that does not exist.
NOT_FOUND_CODES = frozenset(
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


def missing_bucket(config: MinioConfig) -> StorageError:
    """The error of a configured bucket that does not exist."""
    return StorageError(f"MinIO at {config.endpoint_url} has no bucket {config.BUCKET!r}")


def stale_connection(error: Exception) -> bool:
    """A pooled keep-alive connection the server had closed (worth one retry)."""
    import aiohttp

    if isinstance(error, aiohttp.ClientConnectorError):
        return False  # a new connection failed: the server is down
    return isinstance(error, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError))


def _translate(
    config: MinioConfig,
    error: Exception,
    s3_error: type[Exception],
    server_error: type[Exception],
    transport_errors: tuple[type[BaseException], ...],
) -> FileResponseError | None:
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


def _from_s3_code(config: MinioConfig, code: str | None, error: BaseException) -> FileResponseError:
    where = f"MinIO at {config.endpoint_url}"
    if code in NOT_FOUND_CODES:
        return SourceNotFound(f"no object ({error})")
    if code == "NoSuchBucket":
        return missing_bucket(config)
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


def _unavailable(config: MinioConfig, error: BaseException) -> SourceUnavailable:
    detail = str(error) or type(error).__name__
    return SourceUnavailable(
        f"MinIO at {config.endpoint_url} did not answer ({type(error).__name__}: {detail})"
    )
