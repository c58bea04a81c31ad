"""The derivative storage: look-ups, atomic writes and manifests.

Any Django ``Storage``: by default a ``FileSystemStorage`` at
``DERIVATIVES_ROOT`` (else ``MEDIA_ROOT/derivatives``), or the ``STORAGES``
alias ``DERIVATIVES_STORAGE`` (e.g. MinIO). On disk a write goes through a
temporary file in the same directory, fsync'ed, then ``os.replace``; on
other storages it is one ``save`` (a single PUT on object storages). Readers
see a whole derivative or none. The methods block (call them in the I/O
threads, :func:`fileresponse.threads.in_thread`) but for the ``a`` ones,
which look on the event loop when the kernel needs no disk for it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import posixpath
import secrets
import shutil
import stat as stat_module
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from django.core.files.base import ContentFile, File

from fileresponse.conf import get_config, per_settings
from fileresponse.exceptions import SourceNotFound, UnsafePath
from fileresponse.sources.base import Source, SourceStat
from fileresponse.sources.cached import NotCached, open_cached
from fileresponse.sources.filesystem import FilesystemSource, relative_path_parts
from fileresponse.sources.storage import storage_source
from fileresponse.threads import in_thread

from .exceptions import InsufficientStorage
from .keys import TEMP_SUFFIX, manifest_name

if TYPE_CHECKING:
    from django.core.files.storage import Storage

__all__ = ["DerivativeStore", "StoredDerivative", "get_store", "local_location"]

#: The directories of a write, walked from the root's descriptor: never through a symlink.
_DIRECTORY_FLAGS = (
    getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
)
_TEMPORARY_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_PROBE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredDerivative:
    """A derivative found in the store, stat'ed and open: serve it or close its source."""

    name: str
    source: Source
    stat: SourceStat


def local_location(storage: Storage) -> str | None:
    """The directory of a storage that keeps files on this machine (``FileSystemStorage``)."""
    from django.core.files.storage import FileSystemStorage

    if isinstance(storage, FileSystemStorage):
        return os.fspath(storage.location)
    return None


class DerivativeStore:
    """The derivative storage; ``root`` is set when it keeps files on this machine."""

    def __init__(self, storage: Storage, *, alias: str | None = None) -> None:
        self.storage = storage
        self.alias = alias
        self.root = local_location(storage)

    def __repr__(self) -> str:
        return f"<DerivativeStore {self.alias or self.root or type(self.storage).__name__}>"

    # -- reading ------------------------------------------------------------

    def find(self, name: str) -> StoredDerivative | None:
        """The stored derivative ``name`` (a derived name), stat'ed, or ``None`` if absent."""
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

    async def afind(self, name: str) -> StoredDerivative | None:
        """:meth:`find`, on the event loop when the file is in the kernel's caches."""
        if self.root is None:
            return await in_thread(self.find, name)
        source = self._source(name)
        try:
            stat = await source.astat()  # FilesystemSource: an I/O thread only if not cached
        except SourceNotFound:
            source.close()
            return None
        except BaseException:
            source.close()
            raise
        return StoredDerivative(name, source, stat)

    def _source(self, name: str) -> Source:
        if self.root is not None:
            # A derived name, never a request's: no need to walk it from the root. The
            # bytes under a name never change, so a server may reopen it (pathsend).
            return FilesystemSource(os.path.join(self.root, name), immutable=True)
        return storage_source(self.storage, name)

    def exists(self, name: str) -> bool:
        if self.root is not None:
            return os.path.isfile(os.path.join(self.root, name))
        return bool(self.storage.exists(name))

    async def aexists(self, name: str) -> bool:
        """:meth:`exists`, on the event loop when the name is in the kernel's caches."""
        if self.root is not None:
            try:
                descriptor = open_cached(os.path.join(self.root, name), _PROBE_FLAGS)
            except (FileNotFoundError, NotADirectoryError):
                return False
            except (NotCached, OSError):
                pass  # from the disk, in a thread (or the error again, there)
            else:
                try:
                    return stat_module.S_ISREG(os.fstat(descriptor).st_mode)
                finally:
                    os.close(descriptor)
        return await in_thread(self.exists, name)

    def url(self, name: str) -> str:
        """The storage's URL of ``name`` (presigned for object storages that sign)."""
        return str(self.storage.url(name))

    def read(self, name: str) -> bytes:
        with self.storage.open(name, "rb") as file:
            data: bytes = file.read()
        return data

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        try:
            directories, files = self.storage.listdir(path)
        except FileNotFoundError:
            return [], []
        return list(directories), list(files)

    # -- writing ------------------------------------------------------------

    def save(self, name: str, data: bytes | IO[bytes]) -> None:
        """Store ``data`` (bytes, or a binary file read from its start) as ``name`` atomically.

        A file goes to a remote storage in pieces (the storage's own chunked or
        multipart upload), so memory stays bounded whatever its size.
        :class:`InsufficientStorage` when full.
        """
        with _full_is_507():
            if self.root is not None:
                _atomic_write(self.root, name, data)
            elif not self.storage.exists(name):  # else made elsewhere meanwhile: same bytes
                content = ContentFile(data) if isinstance(data, bytes) else File(data, name)
                saved = self.storage.save(name, content)
                if saved != name:
                    # The storage renamed it (its name was taken since the check): keep theirs.
                    self.storage.delete(saved)

    def write_manifest(self, storage_alias: str, source_name: str, engine: str) -> None:
        """Record which source a derivative directory belongs to (for the purge).

        On disk it is written atomically but not fsync'ed: it is never served, and
        whatever a crash leaves in its place (nothing, or bytes that are not the record)
        is written again with the source's next derivative; meanwhile the purge takes the
        directory for an orphan's, and the derivatives it removes are made again on request.
        """
        name = manifest_name(storage_alias, source_name, engine=engine)
        data = json.dumps({"storage": storage_alias, "name": source_name}).encode()
        if self.root is None:
            if not self.exists(name):
                self.save(name, data)
            return
        try:
            with open(os.path.join(self.root, name), "rb") as file:
                if file.read(len(data) + 1) == data:
                    return
        except (FileNotFoundError, NotADirectoryError):
            pass
        with _full_is_507():
            _atomic_write(self.root, name, data, durable=False)

    def delete(self, name: str) -> None:
        self.storage.delete(name)


@contextlib.contextmanager
def _full_is_507() -> Iterator[None]:
    """A full disk or quota as :class:`InsufficientStorage` (``507``)."""
    try:
        yield
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # Nothing of it is left (see _atomic_write): a later request tries again.
        raise InsufficientStorage(
            "no space left in the derivative storage; try again later"
        ) from None


def _atomic_write(root: str, name: str, data: bytes | IO[bytes], *, durable: bool = True) -> None:
    """Write ``root/name`` through a temporary file in the same directory and ``os.replace``.

    The directories are opened (made when missing) one at a time from a descriptor
    of the root, none through a symlink, and the file is made and renamed relative
    to its directory's descriptor: the write stays beneath the root, and no path is
    resolved twice. ``durable``: fsync'ed before the rename, so that no crash leaves
    a name with part of its bytes.
    """
    *directories, filename = relative_path_parts(name)
    directory = _open_directories(root, directories)
    try:
        descriptor, temporary = _create_temporary(directory, filename)
        try:
            with os.fdopen(descriptor, "wb") as file:
                os.fchmod(descriptor, 0o644)
                if isinstance(data, bytes):
                    file.write(data)
                else:  # in pieces: memory stays bounded
                    shutil.copyfileobj(data, file, _COPY_CHUNK)
                file.flush()
                if durable:
                    os.fsync(descriptor)
            os.replace(temporary, filename, src_dir_fd=directory, dst_dir_fd=directory)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary, dir_fd=directory)
            raise
    finally:
        os.close(directory)


def _open_directories(root: str, parts: list[str]) -> int:
    """A descriptor of ``root/parts...``, each opened (made if missing) from its parent's."""
    try:
        descriptor = os.open(root, _DIRECTORY_FLAGS & ~os.O_NOFOLLOW)
    except FileNotFoundError:
        os.makedirs(root, exist_ok=True)
        descriptor = os.open(root, _DIRECTORY_FLAGS & ~os.O_NOFOLLOW)
    try:
        for part in parts:
            try:
                child = _open_directory(part, descriptor)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):  # made by another writer meanwhile
                    os.mkdir(part, dir_fd=descriptor)
                child = _open_directory(part, descriptor)
            os.close(descriptor)
            descriptor = child
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def _open_directory(name: str, parent: int) -> int:
    try:
        return os.open(name, _DIRECTORY_FLAGS, dir_fd=parent)
    except OSError as error:
        if error.errno in (errno.ENOTDIR, errno.ELOOP):
            raise UnsafePath(
                f"not a directory (or a symlink) in the derivative root: {name!r}"
            ) from None
        raise


def _create_temporary(directory: int, filename: str) -> tuple[int, str]:
    """A new file ``.<filename>.<random>.tmp`` in ``directory``, open for writing."""
    while True:
        temporary = f".{filename}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            return os.open(temporary, _TEMPORARY_FLAGS, 0o600, dir_fd=directory), temporary
        except FileExistsError:
            continue  # taken: another name


@per_settings("FILERESPONSE", "MEDIA_ROOT", "MEDIA_URL", "STORAGES")
def get_store() -> DerivativeStore:
    """The derivative store of the settings in force (built again when they change)."""
    from django.conf import settings

    config = get_config()
    if config.DERIVATIVES_STORAGE is not None:
        from django.core.files.storage import storages

        return DerivativeStore(
            storages[config.DERIVATIVES_STORAGE], alias=config.DERIVATIVES_STORAGE
        )
    from django.core.files.storage import FileSystemStorage

    if config.DERIVATIVES_ROOT:
        # Its public URL is unknown: "redirect" needs DERIVATIVES_STORAGE with a base_url.
        return DerivativeStore(FileSystemStorage(location=config.DERIVATIVES_ROOT))
    if settings.MEDIA_ROOT:
        return DerivativeStore(
            FileSystemStorage(
                location=os.path.join(settings.MEDIA_ROOT, "derivatives"),
                base_url=posixpath.join(settings.MEDIA_URL or "/", "derivatives/"),
            )
        )
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "derivatives need FILERESPONSE['DERIVATIVES_ROOT'], DERIVATIVES_STORAGE or MEDIA_ROOT"
    )
