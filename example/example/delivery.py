"""``X-Delivery``: how a file response of the example goes out, for its "how was this served".

``redirect`` (to a presigned or public URL), ``accel`` (nginx ``X-Accel-Redirect``),
``zero-copy`` (``http.response.zerocopysend``: the server's ``sendfile(2)`` from the
descriptor that was stat'ed, for a local file above a chunk; the library's worker),
``pathsend`` (the server sends a derivative by its path: granian), ``stream`` (chunks
read by the application), ``live`` (a derivative sent while it is made). It follows
the choice of ``AsyncFileResponse.send_asgi`` from what the server offers (the scope's
ASGI extensions) and where the file is; the library itself sends no such header.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from django.core.files.storage import storages
from django.http import HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

from fileresponse.asgi_types import PATHSEND, ZEROCOPYSEND
from fileresponse.conf import get_config
from fileresponse.responses import AsyncFileResponse

HEADER = "X-Delivery"


def delivery(request: HttpRequest, response: HttpResponseBase) -> str | None:
    if "X-Accel-Redirect" in response:
        return "accel"
    if 300 <= response.status_code < 400 and "Location" in response:
        return "redirect"
    if not isinstance(response, StreamingHttpResponse):
        return None
    if not isinstance(response, AsyncFileResponse):
        return "live"
    offered = (getattr(request, "scope", None) or {}).get("extensions") or {}
    length = int(response.get("Content-Length") or 0)
    local = _is_local(request.path)
    if ZEROCOPYSEND in offered and local and length > get_config().CHUNK_SIZE:
        return "zero-copy"
    whole = response.status_code == 200
    if PATHSEND in offered and local and whole and request.path.startswith("/derivatives/"):
        return "pathsend"
    return "stream"


def _is_local(path: str) -> bool:
    """Whether the file is on this disk (a filesystem storage), so that sendfile can send it."""
    if path.startswith("/derivatives/"):
        return get_config().DERIVATIVES_STORAGE is None
    backend = type(storages["default"]).__name__
    return backend == "FileSystemStorage"


@sync_and_async_middleware
def DeliveryHeaderMiddleware(
    get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]],
) -> Callable[[HttpRequest], object]:
    from asgiref.sync import iscoroutinefunction

    if iscoroutinefunction(get_response):

        async def amiddleware(request: HttpRequest) -> HttpResponseBase:
            response = await get_response(request)  # type: ignore[misc]
            _annotate(request, response)
            return response

        return amiddleware

    def middleware(request: HttpRequest) -> HttpResponseBase:
        response = get_response(request)
        assert isinstance(response, HttpResponseBase)
        _annotate(request, response)
        return response

    return middleware


def _annotate(request: HttpRequest, response: HttpResponseBase) -> None:
    way = delivery(request, response)
    if way is not None:
        response.headers.setdefault(HEADER, way)
