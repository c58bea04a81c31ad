"""Cache keys, the derivative storage and its atomic writes.

A derivative's name in the derivative storage is derived, never taken from
the request::

    <engine>/<source storage>/<h[:2]>/<h>/<source version>/<spec>.<ext>
    pillow-1/default/3f/3f9c.../18a4c2b9e1f00000-4f2a1/300x200_fill_q-80.webp
    vips-1/default/3f/3f9c.../18a4c2b9e1f00000-4f2a1/300x200_fill_q-80.webp

- ``h`` is a hash of the source's name (so any name, however long or odd,
  gives a short safe path); ``<h>/source.json`` records the name for
  :command:`fileresponse_purge`;
- the source version comes from a stat of the source at request time: its
  entity tag, or its size and modification time, so a changed source gives a
  new name and the old derivatives become garbage for the purge;
- ``<spec>`` is the canonical spec with the output format resolved (``auto``
  decided by the ``Accept`` header; no format: the source's family, by the
  source name's extension) as the extension;
- ``<engine>`` is the engine's version (:attr:`Engine.version
  <fileresponse.derivatives.processors.Engine.version>`): it names the engine
  (``DERIVATIVES_ENGINE``), so Pillow and libvips never share outputs, and
  changes when the engine's output for the same job changes.

The derivative storage is any Django ``Storage``: by default a
``FileSystemStorage`` at ``DERIVATIVES_ROOT``, else the ``STORAGES`` alias
``DERIVATIVES_STORAGE`` (e.g. MinIO). Writes are atomic: on a file system, a
temporary file (``.<name>.<random>.tmp``) in the same directory, fsync'ed,
then ``os.replace``; on other storages, one ``save`` (a single PUT on object
storages, which is atomic). A crash mid-way leaves at most a temporary file,
which never has the final name; the purge removes the old ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import posixpath
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from django.core.files.base import ContentFile

from fileresponse.exceptions import SourceNotFound
from fileresponse.sources.base import Source, SourceStat
from fileresponse.sources.filesystem import FilesystemSource, io_executor, resolve_under_root
from fileresponse.sources.storage import storage_source

from .exceptions import InsufficientStorage
from .processors.jobs import CONTENT_TYPES

if TYPE_CHECKING:
    from django.core.files.storage import Storage

    from .spec import Spec

__all__ = [
    "MANIFEST_NAME",
    "DerivativeStore",
    "SourceState",
    "StoredDerivative",
    "content_type_of",
    "derivative_name",
    "family_format",
    "get_store",
    "is_local",
    "safe_version",
    "source_prefix",
    "stat_source",
    "stat_source_now",
    "version_of",
]

_T = TypeVar("_T")

MANIFEST_NAME = "source.json"
TEMP_SUFFIX = ".tmp"
_SAFE_VERSION = re.compile(r"[A-Za-z0-9._-]{1,64}")
_FAMILIES = {
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".jpe": "jpeg",
    ".jfif": "jpeg",
    ".png": "png",
    ".webp": "webp",
    ".avif": "avif",
}
_EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "avif": "avif"}


async def _in_thread(function: Callable[..., _T], *args: object) -> _T:
    """``function(*args)`` in the library's I/O threads."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(io_executor(), function, *args)


# ---------------------------------------------------------------- names


def family_format(source_name: str) -> str:
    """The output format of a spec without one: the source's family by its extension.

    JPEG stays JPEG, WebP and AVIF stay; anything else (PNG, GIF, TIFF, BMP,
    no extension) becomes PNG, which is lossless and keeps alpha.
    """
    return _FAMILIES.get(posixpath.splitext(source_name)[1].lower(), "png")


def source_prefix(storage_alias: str, source_name: str, *, engine: str) -> str:
    """The directory of all derivatives of one source (every version) by one engine version."""
    digest = hashlib.blake2b(
        f"{storage_alias}\x00{source_name}".encode("utf-8", "surrogatepass"), digest_size=16
    ).hexdigest()
    return f"{engine}/{storage_alias}/{digest[:2]}/{digest}"


def safe_version(version: str) -> str:
    """A version as a path segment: itself when short and safe, else a hash of it."""
    if _SAFE_VERSION.fullmatch(version) and version not in (".", ".."):
        return version
    return hashlib.blake2b(version.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def derivative_name(
    storage_alias: str,
    source_name: str,
    version: str,
    spec: Spec,
    output_format: str,
    *,
    engine: str,
) -> str:
    """The derivative's name in the derivative storage (see the module's docs).

    ``engine`` is the engine's version (``pillow-1``), the first path segment.
    """
    tokens = [token for token in spec.canonical().split(" ") if token not in _FORMAT_TOKENS]
    slug = "_".join(tokens).replace("=", "-") or "fit"
    return (
        f"{source_prefix(storage_alias, source_name, engine=engine)}/{safe_version(version)}/"
        f"{slug}.{_EXTENSIONS[output_format]}"
    )


_FORMAT_TOKENS = frozenset({"jpeg", "png", "webp", "avif", "auto"})


# ---------------------------------------------------------------- sources


@dataclass(frozen=True, slots=True)
class SourceState:
    """A source as stat'ed at request time: enough for the cache key and the job."""

    storage_alias: str
    name: str
    version: str
    size: int
    #: A local path the worker can read, or ``None`` (then the source is copied first:
    #: :mod:`~fileresponse.derivatives.spool`).
    path: str | None
    #: ``(st_dev, st_ino)`` of the file stat'ed at ``path``: the worker checks that it
    #: opened the same file (not one put in its place, or reached through a new symlink).
    identity: tuple[int, int] | None = None


def _local_location(storage: Storage) -> str | None:
    """The directory of a storage that keeps files on this machine (``FileSystemStorage``)."""
    from django.core.files.storage import FileSystemStorage

    if isinstance(storage, FileSystemStorage):
        return os.fspath(storage.location)
    return None


async def stat_source(storage: Storage, storage_alias: str, name: str) -> SourceState:
    """Stat a source (off the event loop): its version and where to read it.

    Raises :class:`~fileresponse.exceptions.SourceNotFound` (``404``) and the
    like, and :class:`~fileresponse.derivatives.exceptions.SourceTooLarge`.
    """
    source = storage_source(storage, name)
    try:
        stat = await source.astat()
    finally:
        source.close()
    return _state(storage_alias, name, source, stat)


def stat_source_now(storage: Storage, storage_alias: str, name: str) -> SourceState:
    """:func:`stat_source` in the calling thread (blocking: call it off the event loop)."""
    source = storage_source(storage, name)
    try:
        stat = source.stat()
    finally:
        source.close()
    return _state(storage_alias, name, source, stat)


def _state(storage_alias: str, name: str, source: Source, stat: SourceStat) -> SourceState:
    if isinstance(source, FilesystemSource):
        return SourceState(
            storage_alias, name, version_of(stat), stat.size, source.local_path, source.identity
        )
    return SourceState(storage_alias, name, version_of(stat), stat.size, stat.path)


def is_local(storage: Storage) -> bool:
    """Whether a storage keeps its files on this machine's file system."""
    return _local_location(storage) is not None


def version_of(stat: SourceStat) -> str:
    """A source's version: its entity tag, or its modification time and size."""
    return stat.etag or f"{int(stat.mtime * 1_000_000):x}-{stat.size:x}"


# ---------------------------------------------------------------- the store


@dataclass(frozen=True, slots=True)
class StoredDerivative:
    """A derivative found in the store, stat'ed and ready to be served."""

    name: str
    source: Source
    stat: SourceStat


class DerivativeStore:
    """The derivative storage, with atomic writes and local short-cuts.

    ``root`` is set when the storage keeps files on this machine; then reads
    and writes go to the file system directly.
    """

    def __init__(self, storage: Storage, *, alias: str | None = None) -> None:
        self.storage = storage
        self.alias = alias
        self.root = _local_location(storage)

    def __repr__(self) -> str:
        return f"<DerivativeStore {self.alias or self.root or type(self.storage).__name__}>"

    # -- reading ------------------------------------------------------------

    def _source(self, name: str) -> Source:
        if self.root is not None:
            # Names are derived (cache keys), never taken from a request: no need to walk
            # the path from the root. The bytes under a name never change: a server may
            # reopen it by name (pathsend).
            return FilesystemSource(os.path.join(self.root, name), immutable=True)
        return storage_source(self.storage, name)

    async def find(self, name: str) -> StoredDerivative | None:
        """The stored derivative ``name`` (a derived name), stat'ed, or ``None`` if absent."""
        source = self._source(name)
        try:
            stat = await source.astat()
        except SourceNotFound:
            source.close()
            return None
        except BaseException:
            source.close()
            raise
        return StoredDerivative(name, source, stat)

    def find_now(self, name: str) -> StoredDerivative | None:
        """:meth:`find` in the calling thread (blocking: call it off the event loop)."""
        source = self._source(name)
        try:
            stat = source.stat()
        except SourceNotFound:
            source.close()
            return None
        except BaseException:
            source.close()
            raise
        return StoredDerivative(name, source, stat)

    async def exists(self, name: str) -> bool:
        if self.root is not None:
            path = os.path.join(self.root, name)
            return await _in_thread(os.path.isfile, path)
        return await _in_thread(self.storage.exists, name)

    async def url(self, name: str) -> str:
        """The storage's URL of ``name`` (presigned for object storages that sign)."""
        return await _in_thread(self.storage.url, name)

    # -- writing ------------------------------------------------------------

    async def save(self, name: str, data: bytes) -> None:
        """Store ``data`` as ``name`` atomically (readers see all of it or nothing)."""
        await _in_thread(self.save_now, name, data)

    def save_now(self, name: str, data: bytes) -> None:
        """:meth:`save` in the calling thread; :class:`InsufficientStorage` on a full disk."""
        try:
            self._save_now(name, data)
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            # Nothing of it is left (see _atomic_write): a later request tries again.
            raise InsufficientStorage(
                "no space left in the derivative storage; try again later"
            ) from None

    def _save_now(self, name: str, data: bytes) -> None:
        if self.root is not None:
            _atomic_write(self.root, name, data)
            return
        if self.storage.exists(name):
            return  # made by another machine meanwhile: same bytes
        saved = self.storage.save(name, ContentFile(data))
        if saved != name:
            # The storage renamed it (its name was taken since the check): keep theirs.
            self.storage.delete(saved)

    async def write_manifest(self, state: SourceState, *, engine: str) -> None:
        """Record which source a derivative directory belongs to (for the purge)."""
        prefix = source_prefix(state.storage_alias, state.name, engine=engine)
        name = f"{prefix}/{MANIFEST_NAME}"
        if await self.exists(name):
            return
        record = {"storage": state.storage_alias, "name": state.name}
        await self.save(name, json.dumps(record).encode())

    # -- listing (purge) -------------------------------------------------------

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        try:
            directories, files = self.storage.listdir(path)
        except FileNotFoundError:
            return [], []
        return list(directories), list(files)

    def delete(self, name: str) -> None:
        self.storage.delete(name)

    def read(self, name: str) -> bytes:
        with self.storage.open(name, "rb") as file:
            data: bytes = file.read()
        return data


def _atomic_write(root: str, name: str, data: bytes) -> None:
    """Write ``root/name`` through a temporary file in the same directory and ``os.replace``."""
    path = resolve_under_root(root, name)
    directory, filename = os.path.split(path)
    os.makedirs(directory, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{filename}.", suffix=TEMP_SUFFIX, dir=directory
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def content_type_of(output_format: str) -> str:
    return CONTENT_TYPES[output_format]


_store: tuple[object, DerivativeStore] | None = None


def get_store() -> DerivativeStore:
    """The derivative store of the settings in force (built again when they change)."""
    global _store
    from django.conf import settings

    from fileresponse.conf import get_config

    config = get_config()
    marker = (config.DERIVATIVES_STORAGE, config.DERIVATIVES_ROOT, settings.MEDIA_ROOT)
    if _store is not None and _store[0] == marker:
        return _store[1]
    if config.DERIVATIVES_STORAGE is not None:
        from django.core.files.storage import storages

        store = DerivativeStore(
            storages[config.DERIVATIVES_STORAGE], alias=config.DERIVATIVES_STORAGE
        )
    else:
        from django.core.files.storage import FileSystemStorage

        if config.DERIVATIVES_ROOT:
            # Its public URL is unknown: "redirect" needs DERIVATIVES_STORAGE with a base_url.
            storage = FileSystemStorage(location=config.DERIVATIVES_ROOT)
        elif settings.MEDIA_ROOT:
            storage = FileSystemStorage(
                location=os.path.join(settings.MEDIA_ROOT, "derivatives"),
                base_url=posixpath.join(settings.MEDIA_URL or "/", "derivatives/"),
            )
        else:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                "derivatives need FILERESPONSE['DERIVATIVES_ROOT'], DERIVATIVES_STORAGE "
                "or MEDIA_ROOT"
            )
        store = DerivativeStore(storage)
    _store = (marker, store)
    return store
