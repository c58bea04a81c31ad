"""Files of any Django Storage (django-storages' S3, Azure, ...), and a source per storage.

:class:`StorageSource` calls the Storage API (``size``, ``get_modified_time``,
``open``, ``seek``/``read``) in the library's I/O threads when used from
async code, so a blocking backend never blocks the event loop.
:func:`storage_source` picks the best source for a storage: its own for a
:class:`~fileresponse.storage.delivery.DeliveringStorage` (a MinioStorage's
is a :class:`~fileresponse.sources.minio.MinioSource`),
:class:`~fileresponse.sources.filesystem.FilesystemSource` for a
FileSystemStorage (zero-copy sending), StorageSource for the rest.
"""

from __future__ import annotations

import errno
import posixpath
import threading
from collections.abc import Callable
from typing import IO, Any, TypeVar

from django.core.files.storage import FileSystemStorage, Storage

from fileresponse.exceptions import (
    FileResponseError,
    SourceNotFound,
    SourceUnavailable,
)
from fileresponse.storage.delivery import DeliveringStorage
from fileresponse.threads import ThreadedReads

from .base import DeferredClose, Source, SourceStat, StatOnce
from .filesystem import FilesystemSource, relative_path_parts

__all__ = ["StorageSource", "storage_source"]

T = TypeVar("T")


def storage_source(storage: Storage, relative_path: str) -> Source:
    """The source for a URL path in ``storage``; the path is checked first.

    ``..``, absolute paths, NUL bytes and backslashes raise
    :class:`~fileresponse.exceptions.UnsafePath` whatever the storage.
    """
    if isinstance(storage, DeliveringStorage):
        return storage.source(relative_path)
    if isinstance(storage, FileSystemStorage):
        return FilesystemSource.from_root(storage.location, relative_path)
    return StorageSource(storage, "/".join(relative_path_parts(relative_path)))


class StorageSource(ThreadedReads, StatOnce, DeferredClose):
    """A file of a Django Storage, read through the Storage API.

    ``stat`` asks ``size`` and ``get_modified_time`` (the ETag is derived
    from them, as nginx does); the first read opens the file, later reads
    seek in it. Backends that cannot tell a modification time get no ETag
    nor Last-Modified. Missing files are
    :class:`~fileresponse.exceptions.SourceNotFound`; connection errors and
    timeouts (``OSError``) are :class:`~fileresponse.exceptions.SourceUnavailable`.
    Unlike the other sources, a file replaced between two reads is not
    detected unless its size changes.
    """

    def __init__(self, storage: Storage, name: str) -> None:
        super().__init__()
        self._storage = storage
        self._name = name
        self._file: IO[Any] | None = None
        # One read at a time: each seeks the one open file.
        self._io_lock = threading.Lock()

    @property
    def name(self) -> str:
        return posixpath.basename(self._name)

    def __repr__(self) -> str:
        return f"<StorageSource {type(self._storage).__name__} {self._name!r}>"

    # -- stat -----------------------------------------------------------------

    def _stat_now(self) -> SourceStat:
        return self._guarded(self._stat_file)

    def _stat_file(self) -> SourceStat:
        size = self._storage.size(self._name)
        try:
            modified = self._storage.get_modified_time(self._name).timestamp()
        except NotImplementedError:
            return SourceStat(size=size, mtime=0.0)
        return SourceStat(size=size, mtime=modified, etag=f"{int(modified * 1_000_000):x}-{size:x}")

    def _guarded(self, operation: Callable[[], T]) -> T:
        """Run a Storage call, turning its errors into the library's."""
        try:
            return operation()
        except FileResponseError:
            raise
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as error:
            raise SourceNotFound(f"no file {self._name!r} in {self._storage!r}") from error
        except OSError as error:  # ConnectionError and TimeoutError included
            raise SourceUnavailable(f"{self!r}: {type(error).__name__}: {error}") from error
        except Exception:
            # Backends raise their own errors for missing files (botocore's
            # ClientError, ...): ask the storage whether the file exists.
            if not self._storage_exists():
                raise SourceNotFound(f"no file {self._name!r} in {self._storage!r}") from None
            raise

    def _storage_exists(self) -> bool:
        try:
            return bool(self._storage.exists(self._name))
        except Exception:
            return True

    # -- reading --------------------------------------------------------------

    def _read_at(self, offset: int, size: int) -> bytes:
        with self._io_lock, self._read_guard():
            if self._file is None:
                self._file = self._guarded(lambda: self._storage.open(self._name, "rb"))
            file = self._file
            try:
                file.seek(offset)
                data = file.read(size)
            except OSError as error:
                raise SourceUnavailable(f"{self!r}: {type(error).__name__}: {error}") from error
        if not isinstance(data, bytes) or len(data) < size:
            raise OSError(errno.EIO, f"{self!r} shrank while it was being sent")
        return data

    # -- closing (DeferredClose: now, or after the read in an I/O thread) -----

    def _release(self) -> None:
        with self._state_lock:
            file, self._file = self._file, None
        if file is not None:
            file.close()
