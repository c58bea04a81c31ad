import logging
import os
import posixpath
from dataclasses import dataclass

from django.core.files.storage import Storage, storages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from fileresponse.exceptions import SourceNotFound
from fileresponse.sources.filesystem import relative_path_parts

logger = logging.getLogger("example")

#: Directories deeper than this are not listed (a symlink loop has no bottom).
MAX_DEPTH = 16


@dataclass(frozen=True)
class MediaEntry:
    path: str
    size: int


def list_storage(
    storage: Storage, directory: str = "", depth: int = 0, seen: set[str] | None = None
) -> list[MediaEntry]:
    """Every file of ``storage`` below ``directory`` that ``/files/`` can serve, sorted by name.

    What cannot be served (a name ``/files/`` refuses, a broken link, a
    symlink loop, a directory that vanished) is left out, with a log line.
    """
    seen = set() if seen is None else seen
    if not _first_visit(storage, directory, seen):
        logger.warning("index: skipped %r: a link to a directory listed already", directory)
        return []
    try:
        directories, files = _listdir(storage, directory)
    except OSError as error:
        logger.warning("index: skipped directory %r: %s", directory, error)
        return []
    entries = []
    for path in (posixpath.join(directory, name) for name in sorted(files)):
        try:
            relative_path_parts(path)
            entries.append(MediaEntry(path=path, size=storage.size(path)))
        except (OSError, SourceNotFound) as error:
            logger.warning("index: skipped %r: %s", path, error)
    for name in sorted(directories):
        path = posixpath.join(directory, name)
        if depth >= MAX_DEPTH:
            logger.warning("index: skipped %r: deeper than %d directories", path, MAX_DEPTH)
            continue
        entries.extend(list_storage(storage, path, depth + 1, seen))
    return entries


def _listdir(storage: Storage, directory: str) -> tuple[list[str], list[str]]:
    """``storage.listdir``, but an entry that cannot be stat'ed (a symlink loop) is skipped.

    Django's ``FileSystemStorage.listdir`` fails as a whole on such an entry.
    """
    try:
        location = storage.path(directory)
    except NotImplementedError:
        directories, files = storage.listdir(directory)
        return list(directories), list(files)
    directories, files = [], []
    with os.scandir(location) as entries:
        for entry in entries:
            try:
                (directories if entry.is_dir() else files).append(entry.name)
            except OSError as error:
                logger.warning(
                    "index: skipped %r: %s", posixpath.join(directory, entry.name), error
                )
    return directories, files


def _first_visit(storage: Storage, directory: str, seen: set[str]) -> bool:
    """False for a directory on disk whose real path was listed already (a symlink loop)."""
    try:
        real = os.path.realpath(storage.path(directory))
    except NotImplementedError:
        return True  # not on disk (MinIO): no links, no loops
    if real in seen:
        return False
    seen.add(real)
    return True


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
