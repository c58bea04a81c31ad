"""``serve``: an async view for the files under a root, and the error mapping."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotAllowed,
)

from .conf import get_config
from .exceptions import FileResponseError, SourceUnavailable
from .responses import AsyncFileResponse
from .sources.filesystem import FilesystemSource

__all__ = ["error_response", "serve"]

logger = logging.getLogger("fileresponse")


def error_response(error: FileResponseError) -> HttpResponse:
    """The one place where source errors become HTTP statuses.

    ``404`` for missing files and unsafe paths (the same answer, so nothing
    tells whether a file exists outside the root), ``403`` for unreadable
    files, ``503`` with ``Retry-After`` for storages that do not answer.
    """
    response = HttpResponse(
        f"{error.status_code} {_REASONS.get(error.status_code, 'Error')}\n",
        status=error.status_code,
        content_type="text/plain; charset=utf-8",
    )
    if isinstance(error, SourceUnavailable):
        retry_after = error.retry_after
        if retry_after is None:
            retry_after = get_config().RETRY_AFTER
        response["Retry-After"] = str(retry_after)
    if error.status_code >= 500:
        logger.error("%s: %s", type(error).__name__, error)
    return response


_REASONS = {403: "Forbidden", 404: "Not Found", 503: "Service Unavailable"}


async def serve(
    request: HttpRequest,
    path: str,
    document_root: str | None = None,
    **response_options: Any,
) -> HttpResponseBase:
    """Serve the file at ``path`` under ``document_root``.

    Like ``django.views.static.serve``, for production: async, ranges,
    conditional requests, no directory listings. ``document_root`` defaults
    to ``FILERESPONSE["DOCUMENT_ROOT"]``, then ``MEDIA_ROOT``. Keyword
    arguments (``as_attachment``, ``cache_control``, ...) go to
    :class:`~fileresponse.responses.AsyncFileResponse`::

        path("files/<path:path>", serve, {"document_root": MEDIA_ROOT})
    """
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    root = document_root or get_config().DOCUMENT_ROOT or settings.MEDIA_ROOT
    if not root:
        raise ImproperlyConfigured("serve() needs a document_root, or MEDIA_ROOT set")
    try:
        source = FilesystemSource.from_root(root, path)
        return await AsyncFileResponse.acreate(source, request, **response_options)
    except FileResponseError as error:
        return error_response(error)
