"""QueuedStorage: save locally at once, move to a remote storage in the background.

Reads go to whichever storage holds the file now: the remote one once its
transfer is ``done`` (the row of :class:`fileresponse.models.Transfer` says
so), the local one before, and the other one when the first has no such file
(a transfer that ended between the look-up and the read). So a file is
readable at every moment of its transfer, under one version: its ETag is the
SHA-256 taken when it was saved, its Last-Modified the time of that save,
whichever storage holds it (the copy is verified by that checksum).
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import File
from django.core.files.storage import Storage
from django.utils import timezone
from django.utils.deconstruct import deconstructible
from django.utils.module_loading import import_string

from fileresponse.conf import get_config
from fileresponse.exceptions import FileResponseError, SourceNotFound
from fileresponse.sources.base import Source, SourceStat
from fileresponse.sources.filesystem import relative_path_parts
from fileresponse.sources.storage import storage_source
from fileresponse.storage.delivery import DeliveringStorage
from fileresponse.threads import in_thread

from .engines import ENGINES, submit

__all__ = ["QueuedSource", "QueuedStorage", "file_digest"]

_T = TypeVar("_T")

logger = logging.getLogger("fileresponse.transfers")

#: Bytes read at a time while hashing.
_HASH_CHUNK = 1024 * 1024

#: What names a storage in the OPTIONS: an alias of STORAGES, a Storage, or a STORAGES entry.
StorageReference = str | Storage | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Saved:
    """A file as it was saved: the same in both storages (the transfer verifies it)."""

    size: int
    #: SHA-256, hex: the file's entity tag in either storage.
    checksum: str
    saved: datetime

    def applied(self, stat: SourceStat) -> SourceStat:
        """``stat`` of a holder with this version, if it has these bytes' size (else as is)."""
        if stat.size != self.size:
            return stat
        return replace(stat, etag=self.checksum, mtime=self.saved.timestamp())


@deconstructible(path="fileresponse.storage.QueuedStorage")
class QueuedStorage(Storage):
    """A local storage in front of a remote one, files moved in the background::

        STORAGES = {
            "default": {
                "BACKEND": "fileresponse.storage.QueuedStorage",
                "OPTIONS": {"local": "local", "remote": "minio", "delete_local": True},
            },
            "local": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "minio": {"BACKEND": "fileresponse.storage.MinioStorage", "OPTIONS": {...}},
        }

    ``local`` and ``remote`` are aliases of ``STORAGES``, Storage instances,
    or entries like those of ``STORAGES`` (``{"BACKEND": dotted path,
    "OPTIONS": {...}}``). ``engine``, ``max_attempts``, ``retry_delay`` and
    ``lease`` default to the ``TRANSFERS_*`` settings; ``rate_limit`` caps a
    transfer's bytes per second (``None``: no cap). The storage must be in
    ``STORAGES``: workers rebuild it by its alias. The remote storage is this
    storage's own: a name is free only when free in both.
    """

    def __init__(
        self,
        local: StorageReference = "local",
        remote: StorageReference = "remote",
        *,
        delete_local: bool = True,
        engine: str | None = None,
        max_attempts: int | None = None,
        retry_delay: float | None = None,
        lease: float | None = None,
        rate_limit: float | None = None,
    ) -> None:
        for option, reference in (("local", local), ("remote", remote)):
            if not isinstance(reference, str | Storage | Mapping):
                raise ImproperlyConfigured(
                    f"QueuedStorage: {option} must be an alias of STORAGES, a Storage "
                    f"or a STORAGES entry, not {type(reference).__name__}"
                )
        if engine is not None and engine not in ENGINES:
            raise ImproperlyConfigured(
                f"QueuedStorage: engine must be one of {', '.join(ENGINES)}, not {engine!r}"
            )
        if rate_limit is not None and not rate_limit > 0:
            raise ImproperlyConfigured("QueuedStorage: rate_limit must be positive or None")
        self._references = {"local": local, "remote": remote}
        self._built: dict[str, Storage] = {}
        self.delete_local = bool(delete_local)
        config = get_config(
            TRANSFERS_MAX_ATTEMPTS=max_attempts,
            TRANSFERS_RETRY_DELAY=retry_delay,
            TRANSFERS_LEASE=lease,
        )
        self.engine = engine
        self.max_attempts = config.TRANSFERS_MAX_ATTEMPTS
        self.retry_delay = config.TRANSFERS_RETRY_DELAY
        self.lease = config.TRANSFERS_LEASE
        self.rate_limit = rate_limit
        self._alias: str | None = None

    def __repr__(self) -> str:
        return f"<QueuedStorage {self._references['local']!r} -> {self._references['remote']!r}>"

    # -- the two storages, built on first use (STORAGES may still be loading) --

    @property
    def local(self) -> Storage:
        return self._storage("local")

    @property
    def remote(self) -> Storage:
        return self._storage("remote")

    def _storage(self, role: str) -> Storage:
        built = self._built.get(role)
        if built is None:
            built = self._built[role] = _build(self._references[role], role)
        return built

    @property
    def alias(self) -> str:
        """This storage's alias in ``STORAGES``: what a transfer job names."""
        if self._alias is None:
            from django.conf import settings
            from django.core.files.storage import storages

            for alias, entry in (getattr(settings, "STORAGES", {}) or {}).items():
                if entry.get("BACKEND", "").endswith("QueuedStorage") and storages[alias] is self:
                    self._alias = alias
                    break
            else:
                raise ImproperlyConfigured(
                    "a QueuedStorage must be an entry of STORAGES: workers rebuild it by alias"
                )
        return self._alias

    # -- where a file is now -------------------------------------------------

    def holders(self, name: str) -> tuple[Storage, Storage]:
        """The storages to read ``name`` from, in order: remote first once it is ``done``."""
        return self._placement(name)[0]

    def _placement(self, name: str) -> tuple[tuple[Storage, Storage], _Saved | None]:
        """:meth:`holders`, and the file as saved (``None``: no row, or none hashed yet)."""
        from fileresponse.models import Transfer

        row = (
            Transfer.objects.filter(storage=self.alias, name=name)
            .values_list("state", "size", "checksum", "created")
            .first()
        )
        if row is None:
            return (self.local, self.remote), None
        state, size, checksum, created = row
        saved = _Saved(size, checksum, created) if checksum and size is not None else None
        if state == Transfer.State.DONE:
            return (self.remote, self.local), saved
        return (self.local, self.remote), saved

    def _placement_off_request(self, name: str) -> tuple[tuple[Storage, Storage], _Saved | None]:
        """:meth:`_placement` in an I/O thread, whose connection no request closes: closed
        here as Django closes a request's (``CONN_MAX_AGE``)."""
        from django.db import close_old_connections

        try:
            return self._placement(name)
        finally:
            close_old_connections()

    def state(self, name: str) -> str | None:
        """``pending``, ``done`` or ``failed``; ``None`` for a file this storage never queued."""
        from fileresponse.models import Transfer

        found: str | None = (
            Transfer.objects.filter(storage=self.alias, name=name)
            .values_list("state", flat=True)
            .first()
        )
        return found

    # -- the Storage API -----------------------------------------------------

    def _save(self, name: str, content: File[Any]) -> str:
        from fileresponse.models import Transfer

        saved = self.local.save(name, content)
        # Its version from now on, whichever storage holds it (read back: what was written).
        size, checksum = file_digest(self.local, saved)
        Transfer.objects.update_or_create(
            storage=self.alias,
            name=saved,
            defaults={
                "state": Transfer.State.PENDING,
                "attempts": 0,
                "size": size,
                "checksum": checksum,
                "created": timezone.now(),
                "error": "",
                "claimed_until": None,
                "done_at": None,
            },
        )
        self.queue(saved)
        return saved

    def queue(self, name: str, *, delay: float = 0) -> None:
        """Submit the transfer of ``name`` (after the current transaction commits)."""
        submit("transfer", [self.alias, name], delay=delay, engine=self.engine)

    def _open(self, name: str, mode: str = "rb") -> File[Any]:
        if mode not in ("r", "rb"):
            raise ValueError("a QueuedStorage opens files for reading; save() writes")
        return self._first(name, lambda storage: storage.open(name, mode))

    def exists(self, name: str) -> bool:
        """Whether ``name`` is taken: queued here, or a file of either storage.

        A remote storage that does not answer counts as not having it, so
        that saving never waits for it; a transfer onto a name taken there
        fails rather than replace that file.
        """
        if self.state(name) is not None or self.local.exists(name):
            return True
        try:
            return bool(self.remote.exists(name))
        except (FileResponseError, OSError) as error:
            logger.warning("%r: the remote storage did not answer (%s)", self, error)
            return False

    def size(self, name: str) -> int:
        return self._first(name, lambda storage: storage.size(name))

    def url(self, name: str | None) -> str:
        if name is None:
            return self.local.url(name)
        return self.holders(name)[0].url(name)

    def get_modified_time(self, name: str) -> datetime:
        """When the file was saved here (its Last-Modified in either storage)."""
        saved = self._placement(name)[1]
        if saved is not None:
            return saved.saved
        return self._first(name, lambda storage: storage.get_modified_time(name))

    def get_created_time(self, name: str) -> datetime:
        return self._first(name, lambda storage: storage.get_created_time(name))

    def get_accessed_time(self, name: str) -> datetime:
        return self._first(name, lambda storage: storage.get_accessed_time(name))

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        directories: set[str] = set()
        files: set[str] = set()
        for storage in (self.local, self.remote):
            try:
                found = storage.listdir(path)
            except FileNotFoundError:
                continue
            directories.update(found[0])
            files.update(found[1])
        return sorted(directories), sorted(files)

    def delete(self, name: str) -> None:
        """Delete the row first (a running transfer then drops its copy), then both copies."""
        from fileresponse.models import Transfer

        Transfer.objects.filter(storage=self.alias, name=name).delete()
        self.local.delete(name)
        self.remote.delete(name)

    def _first(self, name: str, operation: Callable[[Storage], _T]) -> _T:
        """``operation`` on the first holder that has ``name``."""
        first, second = self.holders(name)
        try:
            return operation(first)
        except FileNotFoundError:
            return operation(second)

    # -- delivery (fileresponse.storage.delivery.DeliveringStorage) ----------

    @property
    def delivery(self) -> str:
        return "stream"

    def source(self, relative_path: str) -> QueuedSource:
        return QueuedSource(self, relative_path)

    async def adelivery_url(self, name: str, mode: str) -> str:
        holder = (await in_thread(self._placement_off_request, name))[0][0]
        if isinstance(holder, DeliveringStorage):
            return await holder.adelivery_url(name, mode)
        return await in_thread(holder.url, name)


class QueuedSource:
    """The source of the storage that holds the file when it is stat'ed.

    The stat asks the row (in an I/O thread), then stats the holder's own
    source (a FilesystemSource for a local FileSystemStorage: zero-copy
    sending), the other storage's if that file is gone; reads follow it. Its
    ETag and modification time are the row's (the file as saved), so they do
    not change when the transfer ends: the same bytes, the same validators.
    """

    def __init__(self, storage: QueuedStorage, relative_path: str) -> None:
        self._storage = storage
        self._name = "/".join(relative_path_parts(relative_path))
        self._chosen: Source | None = None
        self._stat: SourceStat | None = None

    @property
    def name(self) -> str:
        return posixpath.basename(self._name)

    def __repr__(self) -> str:
        return f"<QueuedSource {self._name!r} of {self._storage!r}: {self._chosen!r}>"

    def stat(self) -> SourceStat:
        if self._stat is not None:
            return self._stat
        holders, saved = self._storage._placement(self._name)
        for holder in holders:
            source = storage_source(holder, self._name)
            try:
                stat = source.stat()
            except SourceNotFound:
                source.close()
                continue
            return self._chose(source, stat, saved)
        raise SourceNotFound(f"no file {self._name!r} in {self._storage!r}")

    async def astat(self) -> SourceStat:
        if self._stat is not None:
            return self._stat
        holders, saved = await in_thread(self._storage._placement_off_request, self._name)
        for holder in holders:
            source = storage_source(holder, self._name)
            try:
                stat = await source.astat()
            except SourceNotFound:
                source.close()
                continue
            return self._chose(source, stat, saved)
        raise SourceNotFound(f"no file {self._name!r} in {self._storage!r}")

    def _chose(self, source: Source, stat: SourceStat, saved: _Saved | None) -> SourceStat:
        self._chosen = source
        self._stat = stat if saved is None else saved.applied(stat)
        return self._stat

    def _source(self) -> Source:
        if self._chosen is None:
            raise RuntimeError(f"{self!r} is read before it is stat'ed")
        return self._chosen

    async def aprepare(self, start: int, length: int) -> None:
        await self._source().aprepare(start, length)

    def iter_range(self, start: int, length: int, chunk_size: int) -> Iterator[bytes]:
        return self._source().iter_range(start, length, chunk_size)

    def aiter_range(self, start: int, length: int, chunk_size: int) -> AsyncIterator[bytes]:
        return self._source().aiter_range(start, length, chunk_size)

    def close(self) -> None:
        if self._chosen is not None:
            self._chosen.close()


def file_digest(
    storage: Storage, name: str, tick: Callable[[], None] = lambda: None
) -> tuple[int, str]:
    """The size and SHA-256 (hex) of ``name`` in ``storage``; ``tick()`` after each chunk."""
    digest = hashlib.sha256()
    size = 0
    with storage.open(name, "rb") as file:
        while chunk := file.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            tick()
    return size, digest.hexdigest()


def _build(reference: StorageReference, role: str) -> Storage:
    if isinstance(reference, Storage):
        return reference
    if isinstance(reference, str):
        from django.core.files.storage import InvalidStorageError, storages

        try:
            return storages[reference]
        except InvalidStorageError as error:
            raise ImproperlyConfigured(
                f"QueuedStorage: {role} storage {reference!r} is not in STORAGES"
            ) from error
    backend = reference.get("BACKEND")
    if not isinstance(backend, str):
        raise ImproperlyConfigured(f"QueuedStorage: the {role} storage needs a BACKEND")
    storage_class = import_string(backend)
    storage: Storage = storage_class(**(reference.get("OPTIONS") or {}))
    return storage
