"""Views for the live-server tests, next to ``fileresponse.views.serve`` in ``urls.py``.

``stock_file`` answers with Django's own ``django.http.FileResponse`` so a server
can be checked without fileresponse; ``attachment`` exercises ``AsyncFileResponse``
with ``as_attachment=True``; ``scope_extensions`` shows the ASGI extensions the
server offered; ``request_thread`` tells which thread ran a request's sync code.
"""

import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.signals import request_started
from django.http import FileResponse, Http404, HttpRequest, HttpResponseBase, JsonResponse
from django.utils._os import safe_join

from fileresponse.exceptions import FileResponseError
from fileresponse.http import AsyncFileResponse
from fileresponse.sources.filesystem import FilesystemSource
from fileresponse.views import error_response


def stock_file(request: HttpRequest, path: str) -> FileResponse:
    """Serve ``MEDIA_ROOT/path`` with Django's stock ``FileResponse`` (no ranges)."""
    root = Path(settings.MEDIA_ROOT).resolve()
    full_path = Path(safe_join(root, path)).resolve()
    if not full_path.is_relative_to(root) or not full_path.is_file():
        raise Http404(path)
    return FileResponse(full_path.open("rb"))


async def attachment(request: HttpRequest, path: str) -> HttpResponseBase:
    """Serve ``MEDIA_ROOT/path`` as a download (``Content-Disposition: attachment``)."""
    try:
        source = FilesystemSource.from_root(settings.MEDIA_ROOT, path)
        return await AsyncFileResponse.acreate(source, request, as_attachment=True)
    except FileResponseError as error:
        return error_response(error)


async def scope_extensions(request: HttpRequest) -> JsonResponse:
    """The names of the ASGI extensions of this request's scope (none under WSGI)."""
    scope = getattr(request, "scope", {})
    return JsonResponse({"extensions": sorted(scope.get("extensions") or {})})


_in_thread = threading.local()


def _note_started(**kwargs: object) -> None:
    _in_thread.started = True


# Connected when the URLconf is first loaded: from the second request on.
request_started.connect(_note_started, dispatch_uid="tests.project.views._note_started")


def request_thread(request: HttpRequest) -> JsonResponse:
    """A sync view: its thread, whether ``request_started`` ran there, requests seen there.

    ``?sleep=S`` holds the thread for S seconds first.
    """
    time.sleep(float(request.GET.get("sleep", 0)))
    started = getattr(_in_thread, "started", False)
    _in_thread.started = False
    _in_thread.requests = getattr(_in_thread, "requests", 0) + 1
    return JsonResponse(
        {
            "thread": threading.get_ident(),
            "started_here": started,
            "requests_in_thread": _in_thread.requests,
        }
    )
