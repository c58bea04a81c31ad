"""The derivative view: verify, look up, make on a miss (once), serve.

For ``GET``/``HEAD`` of ``<prefix>/<signature>/<options>/<name>``:

1. the URL is verified and parsed by
   :func:`~fileresponse.derivatives.signing.resolve_request` (``403`` for a bad
   signature, before any other work; ``400`` for a bad spec);
2. the spec is checked against the limits (``DERIVATIVES_MAX_WIDTH``/``_HEIGHT``)
   and the output format is decided (``auto``: by the ``Accept`` header, and
   the response gets ``Vary: Accept``);
3. the source is stat'ed (off the event loop): ``404`` when it is gone,
   ``422`` beyond ``DERIVATIVES_MAX_SOURCE_BYTES``; its version goes into the
   derivative's name (:mod:`~fileresponse.derivatives.cache`);
4. hit: the stored derivative is served (see below);
5. miss: one processing run across processes and machines
   (:mod:`~fileresponse.derivatives.singleflight`), in the executor
   (:mod:`~fileresponse.derivatives.executor`), stored atomically, logged as
   one ``INFO`` record ``generated <name> in <ms> ms ...`` on the logger
   ``fileresponse.derivatives``; then served like a hit.

Serving (``DERIVATIVES_SERVE``): ``"stream"`` answers with an
:class:`~fileresponse.responses.AsyncFileResponse` (ranges, conditional
requests, ``HEAD``); ``"redirect"`` with a ``302`` to the storage's URL
(presigned for object storages); ``"accel"`` with ``X-Accel-Redirect`` to
``DERIVATIVES_ACCEL_PREFIX`` + the derivative's name, for nginx to send.
A URL with a source version gets ``DERIVATIVES_CACHE_CONTROL`` (a year,
``immutable``: a changed source gets a new URL); one without gets
``DERIVATIVES_CACHE_CONTROL_UNVERSIONED``.

Bad input (not an image, corrupt, truncated, too many pixels or bytes, an
unsupported format) gives a ``4xx`` whose body is a short reason, logged at
``WARNING``; nothing is stored for it. The failure is remembered in this
process for ``DERIVATIVES_NEGATIVE_TTL`` seconds (keyed by the source's
version, so a fixed source is tried again at once). A full disk while the
derivative (or the temporary copy of a remote source) is written gives a
``507`` with ``Retry-After`` and its reason; nothing partial is kept. The
steps without HTTP live in :mod:`fileresponse.derivatives.pipeline`.
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
)

from fileresponse.conf import Config, get_config
from fileresponse.exceptions import FileResponseError
from fileresponse.http.headers import with_charset
from fileresponse.http.ranges import ByteRange
from fileresponse.responses import AsyncFileResponse
from fileresponse.views import error_response

from .cache import content_type_of, get_store
from .exceptions import InsufficientStorage, ProcessingError
from .pipeline import check_limits, choose_format, logger, obtain_derivative
from .signing import DerivativeRequest, resolve_request
from .spec import InvalidSpec

if TYPE_CHECKING:
    from .cache import DerivativeStore, StoredDerivative

__all__ = ["derivative_response", "serve_derivative"]

#: A redirect may point to a presigned URL that expires: no cache keeps it.
_REDIRECT_CACHE_CONTROL = "private, no-store"


async def serve_derivative(
    request: HttpRequest, signature: str, options: str, name: str
) -> HttpResponseBase:
    """The view of ``fileresponse.derivatives.urls``."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    try:
        derivative_request = resolve_request(signature, options, name)
        return await derivative_response(request, derivative_request)
    except InvalidSpec as error:
        return _problem(400, str(error))
    except ProcessingError as error:
        logger.warning("refused %s: %s", name, error)
        return _problem(error.status_code, str(error))
    except InsufficientStorage as error:
        logger.error("cannot store %s: %s", name, error)
        problem = _problem(error.status_code, str(error))
        problem["Retry-After"] = str(error.retry_after or get_config().RETRY_AFTER)
        return problem
    except FileResponseError as error:
        return error_response(error)


async def derivative_response(
    request: HttpRequest, derivative_request: DerivativeRequest
) -> HttpResponseBase:
    """Serve the derivative a verified request names, making it first on a miss.

    Raises the errors of :mod:`fileresponse.exceptions` and
    :mod:`fileresponse.derivatives.exceptions`; :func:`serve_derivative` maps
    them to statuses.
    """
    config = get_config()
    spec = derivative_request.spec
    check_limits(spec, config)
    output_format, varies = choose_format(
        spec, derivative_request.source_name, request.headers.get("Accept"), config
    )
    store = get_store()
    obtained = await obtain_derivative(
        derivative_request.source_storage(),
        derivative_request.storage,
        derivative_request.source_name,
        spec,
        output_format,
        config=config,
        store=store,
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
        content_type=content_type_of(output_format),
        filename=_filename(derivative_request.source_name, output_format),
        cache_control=cache_control,
        varies=varies,
        config=config,
    )


def _filename(source_name: str, output_format: str) -> str:
    stem = posixpath.splitext(posixpath.basename(source_name))[0] or "derivative"
    return f"{stem}.{'jpg' if output_format == 'jpeg' else output_format}"


async def _deliver(
    request: HttpRequest,
    store: DerivativeStore,
    found: StoredDerivative,
    *,
    content_type: str,
    filename: str,
    cache_control: str,
    varies: bool,
    config: Config,
) -> HttpResponseBase:
    headers = {"X-Content-Type-Options": "nosniff"}
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
        await _start_first_range(response, found)
        return response
    found.source.close()
    redirect: HttpResponseBase
    if config.DERIVATIVES_SERVE == "redirect":
        redirect = HttpResponseRedirect(await store.url(found.name))
        redirect["Cache-Control"] = _REDIRECT_CACHE_CONTROL
    else:
        # nginx sends the type set here: the same as a streamed derivative's.
        redirect = HttpResponse(content_type=with_charset(content_type, config.TEXT_CHARSET))
        redirect["X-Accel-Redirect"] = config.DERIVATIVES_ACCEL_PREFIX + quote(found.name)
        redirect["Cache-Control"] = cache_control
    for header, value in headers.items():
        redirect[header] = value
    return redirect


async def _start_first_range(response: AsyncFileResponse, found: StoredDerivative) -> None:
    """Let a remote source open its first GET while a failure can still be a ``503``."""
    prepare = getattr(found.source, "aprepare", None)
    first = next((part for part in response.plan.body if isinstance(part, ByteRange)), None)
    if prepare is None or first is None:
        return
    try:
        await prepare(first.first, first.length)
    except BaseException:
        found.source.close()
        raise


def _problem(status: int, reason: str) -> HttpResponse:
    """A short plain-text error: the status and the reason."""
    return HttpResponse(
        f"{status} {reason}\n", status=status, content_type="text/plain; charset=utf-8"
    )
