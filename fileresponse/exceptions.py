"""Errors raised by sources; :func:`fileresponse.errors.error_response` maps them to statuses."""

from __future__ import annotations

__all__ = [
    "FileResponseError",
    "SourceForbidden",
    "SourceNotFound",
    "SourceUnavailable",
    "StorageError",
    "StreamCut",
    "UnsafePath",
]


class FileResponseError(Exception):
    """Base class of the errors of this library."""

    status_code = 500


class SourceNotFound(FileResponseError):
    """No such file (or it is not a regular file): ``404``."""

    status_code = 404


class UnsafePath(SourceNotFound):
    """A requested path escapes its root or is not a valid name: ``404``.

    A subclass of :class:`SourceNotFound` so that nothing tells an attacker
    whether a file exists outside the root.
    """


class SourceForbidden(FileResponseError):
    """The file exists but may not be read (permissions): ``403``."""

    status_code = 403


class SourceUnavailable(FileResponseError):
    """The storage does not answer (down, timed out): ``503`` with ``Retry-After``."""

    status_code = 503

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageError(FileResponseError):
    """The storage refuses the configuration (credentials, no such bucket): ``500``, logged.

    Not the client's fault and not transient: ``manage.py check`` reports the
    same problem at start-up (see :mod:`fileresponse.checks`).
    """

    status_code = 500


class StreamCut(Exception):
    """A streamed body cannot be finished (the run it followed failed).

    Raised from the body once its first bytes are sent: the ASGI handler logs
    it and stops, so the server closes the connection without the last chunk
    and the client sees an incomplete transfer.
    """
