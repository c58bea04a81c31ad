"""The view most projects write: ``FileResponse(open(path, "rb"))`` (a sync view).

Under ASGI, Django runs the view in its thread and reads the response's sync
iterator with ``sync_to_async(list)`` before sending, as for ``static.serve``.
"""

from django.conf import settings
from django.http import FileResponse, Http404
from django.urls import path
from django.utils._os import safe_join


def download(request, path):
    try:
        full = safe_join(settings.MEDIA_ROOT, path)
        return FileResponse(open(full, "rb"))
    except (OSError, ValueError) as error:
        raise Http404(path) from error


urlpatterns = [path("files/<path:path>", download)]
