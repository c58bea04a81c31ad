import posixpath
from dataclasses import dataclass

from django.core.files.storage import Storage, storages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@dataclass(frozen=True)
class MediaEntry:
    path: str
    size: int


def list_storage(storage: Storage, directory: str = "") -> list[MediaEntry]:
    """Every file of ``storage`` below ``directory``, depth first, sorted by name."""
    directories, files = storage.listdir(directory)
    entries = [
        MediaEntry(path=path, size=storage.size(path))
        for path in (posixpath.join(directory, name) for name in sorted(files))
    ]
    for name in sorted(directories):
        entries.extend(list_storage(storage, posixpath.join(directory, name)))
    return entries


def index(request: HttpRequest) -> HttpResponse:
    # A sync view: Django runs it in a worker thread under ASGI, so listing the
    # storage (a directory on disk, or a MinIO bucket) does not block the event loop.
    storage = storages["default"]
    minio_config = getattr(storage, "config", None)
    location = getattr(storage, "location", None) or getattr(minio_config, "BUCKET", "")
    context = {
        "storage": type(storage).__name__,
        "location": location,
        "entries": list_storage(storage),
    }
    return render(request, "index.html", context)
