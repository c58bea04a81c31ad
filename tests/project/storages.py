"""A Django Storage that fileresponse knows nothing about, for the generic StorageSource.

``OpaqueStorage`` keeps its files on disk through a FileSystemStorage it wraps
(not subclasses), so :func:`fileresponse.sources.storage.storage_source` cannot
recognise it and serves it through the Storage API, as it would django-storages'
S3 or Azure backends.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import IO, Any

from django.core.files.base import File
from django.core.files.storage import FileSystemStorage, Storage
from django.utils.deconstruct import deconstructible


@deconstructible(path="tests.project.storages.OpaqueStorage")
class OpaqueStorage(Storage):
    def __init__(self, location: str | None = None) -> None:
        self._files = FileSystemStorage(location=location)

    def _open(self, name: str, mode: str = "rb") -> File[Any]:
        return self._files.open(name, mode)

    def _save(self, name: str, content: IO[Any]) -> str:
        return self._files.save(name, content)

    def exists(self, name: str) -> bool:
        return self._files.exists(name)

    def delete(self, name: str) -> None:
        self._files.delete(name)

    def size(self, name: str) -> int:
        # Like an object store: a directory is not a file.
        if not os.path.isfile(self._files.path(name)):
            raise FileNotFoundError(name)
        return self._files.size(name)

    def get_modified_time(self, name: str) -> datetime:
        return self._files.get_modified_time(name)

    def url(self, name: str | None) -> str:
        return "/files/" + (name or "")

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        return self._files.listdir(path)
