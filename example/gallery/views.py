"""The gallery: a page of thumbnails that are derivatives, made when first requested.

Rendering writes signed URLs only (``{% fileprocessor %}``): no image is read,
processed or even stat'ed while the page renders, so the page is fast however
many thumbnails it has. Each thumbnail is made by the derivative view on the
browser's first request, once, then served from the derivative storage.
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

GALLERY_DIRECTORY = "gallery"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def photo_names() -> list[str]:
    """The storage names of the gallery's photos (one listing of the directory)."""
    try:
        _, files = default_storage.listdir(GALLERY_DIRECTORY)
    except FileNotFoundError:
        return []
    return [
        f"{GALLERY_DIRECTORY}/{name}"
        for name in sorted(files)
        if name.lower().endswith(IMAGE_SUFFIXES)
    ]


def gallery(request: HttpRequest) -> HttpResponse:
    # A sync view: Django runs it in a thread under ASGI, so the listing does not
    # block the event loop.
    return render(request, "gallery/gallery.html", {"photos": photo_names()})
