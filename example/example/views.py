import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@dataclass(frozen=True)
class MediaEntry:
    path: str
    size: int


def list_media(root: Path) -> list[MediaEntry]:
    """Every regular file under ``root``, as POSIX paths relative to it, sorted."""
    entries = []
    for directory, subdirectories, filenames in os.walk(root):
        subdirectories.sort()
        for filename in sorted(filenames):
            file_path = Path(directory, filename)
            if file_path.is_file():
                relative = file_path.relative_to(root).as_posix()
                entries.append(MediaEntry(path=relative, size=file_path.stat().st_size))
    return entries


def index(request: HttpRequest) -> HttpResponse:
    # A sync view: Django runs it in a worker thread under ASGI, so walking the
    # directory does not block the event loop.
    media_root = Path(settings.MEDIA_ROOT)
    context = {"media_root": media_root, "entries": list_media(media_root)}
    return render(request, "index.html", context)
