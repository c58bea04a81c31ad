"""The derivative view: verify, obtain (look up, or make once), deliver.

A bad signature is a ``403`` before any other work, a bad spec a ``400``;
the other steps are :func:`~fileresponse.derivatives.pipeline.obtain_or_stream`'s
(a miss of a processor that streams is sent as it is made: chunked, ``no-store``).
Delivery follows ``DERIVATIVES_SERVE``: ``"stream"`` (an
:class:`~fileresponse.responses.AsyncFileResponse`: ranges, conditional
requests, ``HEAD``), ``"redirect"`` (``302`` to the storage's URL) or
``"accel"`` (``X-Accel-Redirect`` for nginx), each with ``Cache-Status`` and
``Server-Timing`` (:mod:`.diagnostics`) unless ``DERIVATIVES_DIAGNOSTIC_HEADERS``
is off. Errors become responses in :func:`fileresponse.errors.error_response`.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING
from urllib.parse import quote

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    StreamingHttpResponse,
)

from fileresponse.conf import Config, get_config
from fileresponse.errors import error_response
from fileresponse.exceptions import FileResponseError
from fileresponse.http.headers import content_disposition, with_charset
from fileresponse.responses import AsyncFileResponse
from fileresponse.threads import in_thread

from .diagnostics import Provenance, diagnostic_headers
from .pipeline import Streaming, obtain_or_stream
from .signing import DerivativeRequest, resolve_request
from .store import get_store

if TYPE_CHECKING:
    from .store import DerivativeStore, StoredDerivative

__all__ = ["derivative_response", "serve_derivative"]

#: A redirect may point to a presigned URL that expires: no cache keeps it.
_REDIRECT_CACHE_CONTROL = "private, no-store"
#: A derivative streamed while it is made may still fail: no cache keeps it.
_STREAMED_CACHE_CONTROL = "no-store"


async def serve_derivative(
    request: HttpRequest, signature: str, options: str, name: str
) -> HttpResponseBase:
    """The view of ``fileresponse.derivatives.urls``."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    try:
        derivative_request = resolve_request(signature, options, name)
        return await derivative_response(request, derivative_request)
    except FileResponseError as error:
        return error_response(error, request)


async def derivative_response(
    request: HttpRequest, derivative_request: DerivativeRequest
) -> HttpResponseBase:
    """Serve the derivative a verified request names, making it first on a miss.

    Raises the errors of :mod:`fileresponse.exceptions` and
    :mod:`fileresponse.derivatives.exceptions`; :func:`serve_derivative` maps
    them to statuses.
    """
    config = get_config()
    store = get_store()
    obtained = await obtain_or_stream(
        derivative_request.source_storage(),
        derivative_request.storage,
        derivative_request.source_name,
        derivative_request.spec,
        accept=request.headers.get("Accept"),
        config=config,
        store=store,
    )
    if isinstance(obtained, Streaming):
        return _streamed(
            obtained,
            filename=_filename(derivative_request.source_name, obtained.output.extension),
            config=config,
        )
    cache_control = (
        config.DERIVATIVES_CACHE_CONTROL
        if derivative_request.version is not None
        else config.DERIVATIVES_CACHE_CONTROL_UNVERSIONED
    )
    return await _deliver(
        request,
        store,
        obtained.stored,
        content_type=obtained.output.content_type,
        filename=_filename(derivative_request.source_name, obtained.output.extension),
        cache_control=cache_control,
        varies=obtained.varies,
        provenance=obtained.provenance,
        config=config,
    )


def _filename(source_name: str, extension: str) -> str:
    stem = posixpath.splitext(posixpath.basename(source_name))[0] or "derivative"
    return f"{stem}.{extension}"


def _streamed(streaming: Streaming, *, filename: str, config: Config) -> StreamingHttpResponse:
    """A derivative's bytes as they are made: chunked, and no cache keeps this first copy.

    Its first bytes are sent before the command has succeeded (not yet a
    validated representation): ``no-store``, and no validators. If the run
    fails, the body raises and the server cuts the response (no last chunk).
    """
    response = StreamingHttpResponse(
        streaming.body,
        content_type=with_charset(streaming.output.content_type, config.TEXT_CHARSET),
    )
    response["Cache-Control"] = _STREAMED_CACHE_CONTROL
    response["Content-Disposition"] = content_disposition(filename, as_attachment=False)
    response["X-Content-Type-Options"] = "nosniff"
    if streaming.varies:
        response["Vary"] = "Accept"
    for header, value in _diagnostics(streaming.provenance, config).items():
        response[header] = value
    return response


def _diagnostics(provenance: Provenance, config: Config) -> dict[str, str]:
    return diagnostic_headers(provenance) if config.DERIVATIVES_DIAGNOSTIC_HEADERS else {}


async def _deliver(
    request: HttpRequest,
    store: DerivativeStore,
    found: StoredDerivative,
    *,
    content_type: str,
    filename: str,
    cache_control: str,
    varies: bool,
    provenance: Provenance,
    config: Config,
) -> HttpResponseBase:
    headers = {"X-Content-Type-Options": "nosniff", **_diagnostics(provenance, config)}
    if varies:
        headers["Vary"] = "Accept"
    if config.DERIVATIVES_SERVE == "stream":
        response = AsyncFileResponse(
            found.source,
            request,
            stat=found.stat,
            content_type=content_type,
            filename=filename,
            cache_control=cache_control,
            headers=headers,
        )
        await response.aprepare()
        return response
    found.source.close()
    redirect: HttpResponseBase
    if config.DERIVATIVES_SERVE == "redirect":
        redirect = HttpResponseRedirect(await in_thread(store.url, found.name))
        redirect["Cache-Control"] = _REDIRECT_CACHE_CONTROL
    else:
        # nginx sends the type set here: the same as a streamed derivative's.
        redirect = HttpResponse(content_type=with_charset(content_type, config.TEXT_CHARSET))
        redirect["X-Accel-Redirect"] = config.DERIVATIVES_ACCEL_PREFIX + quote(found.name)
        redirect["Cache-Control"] = cache_control
    for header, value in headers.items():
        redirect[header] = value
    return redirect
