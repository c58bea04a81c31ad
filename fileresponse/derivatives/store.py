"""The derivative storage: look-ups, atomic writes and manifests.

Any Django ``Storage``: by default a ``FileSystemStorage`` at
``DERIVATIVES_ROOT`` (else ``MEDIA_ROOT/derivatives``), or the ``STORAGES``
alias ``DERIVATIVES_STORAGE`` (e.g. MinIO). On disk a write goes through a
temporary file in the same directory, fsync'ed, then ``os.replace``; on
other storages it is one ``save`` (a single PUT on object storages). Readers
see a whole derivative or none. Every method blocks: call them in the I/O
threads (:func:`fileresponse.threads.in_thread`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import posixpath
import tempfile
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from django.core.files.base import ContentFile, File

from fileresponse.conf import get_config, per_settings
from fileresponse.exceptions import SourceNotFound
from fileresponse.sources.base import Source, SourceStat
from fileresponse.sources.filesystem import FilesystemSource, resolve_under_root
from fileresponse.sources.storage import storage_source

from .exceptions import InsufficientStorage
from .keys import TEMP_SUFFIX, manifest_name

if TYPE_CHECKING:
    from django.core.files.storage import Storage

__all__ = ["DerivativeStore", "StoredDerivative", "get_store", "local_location"]


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
        if self.root is not None:
            # A derived name, never a request's: no need to walk it from the root. The
            # bytes under a name never change, so a server may reopen it (pathsend).
            source: Source = FilesystemSource(os.path.join(self.root, name), immutable=True)
        else:
            source = storage_source(self.storage, name)
        try:
            stat = source.stat()
        except SourceNotFound:
            source.close()
            return None
        except BaseException:
            source.close()
            raise
        return StoredDerivative(name, source, stat)

    def exists(self, name: str) -> bool:
        if self.root is not None:
            return os.path.isfile(os.path.join(self.root, name))
        return bool(self.storage.exists(name))

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
        try:
            if self.root is not None:
                _atomic_write(self.root, name, data if isinstance(data, bytes) else data.read())
            elif not self.storage.exists(name):  # else made elsewhere meanwhile: same bytes
                content = ContentFile(data) if isinstance(data, bytes) else File(data, name)
                saved = self.storage.save(name, content)
                if saved != name:
                    # The storage renamed it (its name was taken since the check): keep theirs.
                    self.storage.delete(saved)
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            # Nothing of it is left (see _atomic_write): a later request tries again.
            raise InsufficientStorage(
                "no space left in the derivative storage; try again later"
            ) from None

    def write_manifest(self, storage_alias: str, source_name: str, engine: str) -> None:
        """Record which source a derivative directory belongs to (for the purge)."""
        name = manifest_name(storage_alias, source_name, engine=engine)
        if not self.exists(name):
            record = {"storage": storage_alias, "name": source_name}
            self.save(name, json.dumps(record).encode())

    def delete(self, name: str) -> None:
        self.storage.delete(name)


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
