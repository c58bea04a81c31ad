"""The media library's pages: the gallery, an item, the upload form, and their JSON.

Pages write signed derivative URLs only (the template tags): no file is read,
processed or stat'ed while a page renders. Sync views: Django runs them in a
thread under ASGI, so database queries do not block the event loop.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from fileresponse.uploads import pending_upload, save_in_background, upload_state
from fileresponse.views import serve
from gallery.forms import UploadForm
from gallery.models import Media
from gallery.uploads import (
    AUDIO_TRANSCODE,
    AUDIO_WAVEFORM,
    PDF_PAGE,
    PLAYABLE_AUDIO,
    VIDEO_POSTER,
    VIDEO_TRANSCODE,
    save_now,
    warm_specs,
)

#: PDF pages previewed on an item's page.
PREVIEW_PAGES = 4


def gallery(request: HttpRequest) -> HttpResponse:
    items = list(Media.objects.all())
    pending = {item.pk for item in items if not item.file}
    return render(request, "gallery/gallery.html", {"items": items, "pending": pending})


def detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Media, pk=pk)
    context = {
        "item": item,
        "state": upload_state(item, "file") or ("done" if item.file else None),
        "upload": pending_upload(item, "file"),
        "specs": {
            "poster": VIDEO_POSTER,
            "video": VIDEO_TRANSCODE,
            "waveform": AUDIO_WAVEFORM,
            "audio": AUDIO_TRANSCODE,
        },
        "audio_as_is": item.extension in PLAYABLE_AUDIO,
        "pdf_pages": [
            PDF_PAGE.format(page=number)
            for number in range(1, min(item.pages or 1, PREVIEW_PAGES) + 1)
        ],
    }
    return render(request, "gallery/detail.html", context)


@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    wants_json = "application/json" in request.headers.get("Accept", "")
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if form.is_valid():
            item = form.save()
            file = form.cleaned_data["upload"]
            if settings.BACKGROUND_UPLOADS:
                save_in_background(
                    item,
                    "file",
                    file,
                    specs=warm_specs(item),
                    callback="gallery.uploads.after_upload",
                )
            else:
                save_now(item, file)
            if wants_json:
                return JsonResponse(_state(item), status=202)
            return redirect(item)
        if wants_json:
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    context = {"form": form, "background": settings.BACKGROUND_UPLOADS}
    return render(request, "gallery/upload.html", context)


def state(request: HttpRequest, pk: int) -> JsonResponse:
    """Where an item's upload is: ``pending``, ``failed`` or ``done``, for the upload page."""
    return JsonResponse(_state(get_object_or_404(Media, pk=pk)))


def _state(item: Media) -> dict[str, object]:
    item.refresh_from_db()
    pending = pending_upload(item, "file")
    return {
        "id": item.pk,
        "state": upload_state(item, "file") or ("done" if item.file else "pending"),
        "file": item.file.name or None,
        "error": pending.error if pending else None,
        "url": item.get_absolute_url(),
    }


async def download(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The original, as an attachment under the name it was uploaded with."""
    item = await Media.objects.filter(pk=pk).exclude(file="").afirst()
    if item is None:
        return HttpResponse("Not Found", status=404, content_type="text/plain")
    return await serve(
        request,
        item.file.name,
        storage="default",
        as_attachment=True,
        filename=item.original_name,
    )
