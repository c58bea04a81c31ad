"""``/files/small.bin``: an async view returning the 4 KiB body as an ``HttpResponse``."""

import os

from django.conf import settings
from django.http import Http404, HttpResponse
from django.urls import path

NAME = "small.bin"
with open(os.path.join(settings.MEDIA_ROOT, NAME), "rb") as file:
    BODY = file.read()


async def small(request, path):
    if path != NAME:
        raise Http404(path)
    return HttpResponse(BODY, content_type="application/octet-stream")


urlpatterns = [path("files/<path:path>", small)]
