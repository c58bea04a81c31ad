"""The one place where the library's errors become HTTP responses, for every view.

The status comes from the error (``status_code``: 400 bad spec, 403 bad
signature or unreadable file, 404 missing file or path outside the root,
422 source that cannot be processed, 503/507 with ``Retry-After``). The body
is the status and its phrase; under ``DEBUG`` it also says why. Every
refusal logs one line with the reason on the ``fileresponse`` logger.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import TYPE_CHECKING

from django.conf import settings
from django.http import HttpResponse

from .conf import get_config
from .exceptions import FileResponseError, SourceUnavailable

if TYPE_CHECKING:
    from django.http import HttpRequest

__all__ = ["error_response", "logger"]

logger = logging.getLogger("fileresponse")


def error_response(error: FileResponseError, request: HttpRequest | None = None) -> HttpResponse:
    """The response for ``error`` (``request`` names the path in the log line).

    ``404`` for a missing file and for a path outside the root alike, so that
    nothing tells whether a file exists outside the root; the reason shows
    only in the log and, under ``DEBUG``, in the body.
    """
    status = error.status_code
    body = f"{status} {_phrase(status)}\n"
    if settings.DEBUG:
        body += f"\n{type(error).__name__}: {error}\n"
    response = HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")
    if isinstance(error, SourceUnavailable):
        retry_after = error.retry_after
        response["Retry-After"] = str(
            get_config().RETRY_AFTER if retry_after is None else retry_after
        )
    path = "" if request is None else f" {request.path}"
    level = logging.ERROR if status >= 500 else logging.WARNING if status != 404 else logging.INFO
    logger.log(level, "refused%s: %d %s: %s", path, status, type(error).__name__, error)
    return response


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
