"""The ASGI fast path: public files answered before Django's URL resolution and middleware.

:class:`FastPathApplication` wraps an ASGI application (``get_asgi_application()``
wraps its handler when ``FILERESPONSE["FAST_PATHS"]`` is set). A GET or HEAD
under one of the prefixes is answered by the same view the URLconf would
call (:func:`fileresponse.views.serve`, :func:`~fileresponse.derivatives.views.serve_derivative`,
:func:`fileresponse.staticfiles.static_response`), so statuses, headers and
bytes are the same; no middleware runs and no request signal is sent there,
and ``FAST_PATH_HEADERS`` adds what a middleware would. Everything else goes
to the wrapped application unchanged.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIRequest, get_script_prefix
from django.core.handlers.exception import response_for_exception
from django.http import (
    HttpRequest,
    HttpResponseBadRequest,
    HttpResponseBase,
    HttpResponseNotAllowed,
    StreamingHttpResponse,
)
from django.utils.cache import patch_vary_headers

from .asgi_types import ResponseBody, ResponseStart, Send
from .conf import get_config, per_settings
from .derivatives.views import serve_derivative
from .errors import error_response
from .exceptions import SourceNotFound, StreamCut
from .handlers import encode_headers
from .responses import AsyncFileResponse, aclosing
from .staticfiles import static_response
from .views import serve

__all__ = ["FastPathApplication", "FastPathRequest", "FastRoutes", "fast_routes"]

logger = logging.getLogger("fileresponse")

Receive = Callable[[], Awaitable[Mapping[str, Any]]]
ASGIApplication = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]
#: A target's view: the request and the path after the prefix.
Responder = Callable[[HttpRequest, str], Awaitable[HttpResponseBase]]

_METHODS = ("GET", "HEAD")
#: The URL pattern of fileresponse.derivatives.urls: ``<str:signature>/<str:options>/<path:name>``.
_DERIVATIVE_PATH = re.compile(r"(?P<signature>[^/]+)/(?P<options>[^/]+)/(?P<name>.+)")
_END_OF_BODY: ResponseBody = {"type": "http.response.body", "body": b"", "more_body": False}


class FastPathApplication:
    """An ASGI application that answers the ``FAST_PATHS`` prefixes before ``app`` is asked.

    ``app`` is any ASGI application (usually :class:`~fileresponse.handlers.AsyncFileASGIHandler`);
    it gets every other request, the lifespan and websockets. The prefixes are
    read from the settings (again when they change); a bad one fails here, at start-up.
    """

    def __init__(self, app: ASGIApplication) -> None:
        self.app = app
        fast_routes()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            routes = fast_routes()
            path = _path_info(scope)
            for prefix, respond in routes.routes:
                if path.startswith(prefix):
                    await routes.answer(respond, path[len(prefix) :], scope, receive, send)
                    return
        await self.app(scope, receive, send)


class FastPathRequest(ASGIRequest):
    """Django's ASGI request for a GET or HEAD of the fast path: its body is never read."""

    def __init__(self, scope: dict[str, Any]) -> None:
        super().__init__(scope, io.BytesIO())


@dataclass(frozen=True, slots=True)
class FastRoutes:
    """The fast path's prefixes, longest first, and the headers of its responses."""

    routes: tuple[tuple[str, Responder], ...]
    headers: tuple[tuple[str, str], ...]
    vary: tuple[str, ...]

    async def answer(
        self, respond: Responder, path: str, scope: dict[str, Any], receive: Receive, send: Send
    ) -> None:
        """Answer one request under a prefix: the view's response, then sent as the handler does."""
        response = await self._response(respond, path, scope)
        try:
            if _sends_for_long(response):
                await _until_disconnect(receive, _send(response, send))
            else:
                await _send(response, send)
        finally:
            _release(response)

    async def _response(
        self, respond: Responder, path: str, scope: dict[str, Any]
    ) -> HttpResponseBase:
        """The view's response (or the refusal), with FAST_PATH_HEADERS and the extensions."""
        response = await _view_response(respond, path, scope)
        for name, value in self.headers:
            response.headers.setdefault(name, value)
        if self.vary:
            patch_vary_headers(response, self.vary)
        if isinstance(response, AsyncFileResponse):
            response.asgi_extensions = scope.get("extensions") or {}
        return response


async def _view_response(respond: Responder, path: str, scope: dict[str, Any]) -> HttpResponseBase:
    try:
        request = FastPathRequest(scope)
    except UnicodeDecodeError:  # a query string that is not UTF-8, as Django's handler
        return HttpResponseBadRequest()
    if request.method not in _METHODS:
        return HttpResponseNotAllowed(_METHODS)
    try:
        return await respond(request, path)
    except Exception as error:
        # As Django's handler: logged on django.request, a 500 (the debug page under DEBUG).
        return response_for_exception(request, error)


@per_settings("FILERESPONSE", "STATIC_ROOT", "STORAGES")
def fast_routes() -> FastRoutes:
    """The routes of ``FAST_PATHS``; ImproperlyConfigured for a target that cannot be served."""
    config = get_config()
    routes = sorted(config.FAST_PATHS.items(), key=lambda item: len(item[0]), reverse=True)
    headers = list(config.FAST_PATH_HEADERS.items())
    return FastRoutes(
        routes=tuple((prefix, _responder(prefix, target)) for prefix, target in routes),
        headers=tuple((name, value) for name, value in headers if name.lower() != "vary"),
        vary=tuple(
            field.strip()
            for name, value in headers
            if name.lower() == "vary"
            for field in value.split(",")
            if field.strip()
        ),
    )


def _responder(prefix: str, target: str | Mapping[str, str]) -> Responder:
    where = f"FILERESPONSE['FAST_PATHS'][{prefix!r}]"
    if target == "static":
        if not settings.STATIC_ROOT:
            raise ImproperlyConfigured(f"{where} serves STATIC_ROOT, which is not set")
        return static_response
    if target == "derivatives":
        return _derivative
    assert not isinstance(target, str)  # validated: the other targets are dicts
    if "storage" in target:
        storage = target["storage"]
        if storage not in (getattr(settings, "STORAGES", None) or {}):
            raise ImproperlyConfigured(f"{where}: storage {storage!r} is not in STORAGES")

        async def from_storage(request: HttpRequest, path: str) -> HttpResponseBase:
            return await serve(request, path, storage=storage)

        return from_storage
    root = target["root"]

    async def under_root(request: HttpRequest, path: str) -> HttpResponseBase:
        return await serve(request, path, document_root=root)

    return under_root


async def _derivative(request: HttpRequest, path: str) -> HttpResponseBase:
    """A derivative URL, split as ``fileresponse.derivatives.urls`` splits it."""
    parts = _DERIVATIVE_PATH.fullmatch(path)
    if parts is None:
        return error_response(SourceNotFound("not a derivative URL"), request)
    return await serve_derivative(request, parts["signature"], parts["options"], parts["name"])


def _path_info(scope: dict[str, Any]) -> str:
    """The path below the script prefix, as ``ASGIRequest.path_info``."""
    path: str = scope["path"]
    script_name = get_script_prefix(scope).rstrip("/")
    if script_name and (path.startswith(script_name + "/") or path == script_name):
        return path[len(script_name) :]
    return path


# -- sending ---------------------------------------------------------------


async def _send(response: HttpResponseBase, send: Send) -> None:
    """Send as :class:`~fileresponse.handlers.AsyncFileASGIHandler` does: a file sends itself."""
    if isinstance(response, AsyncFileResponse) and response.streams_itself:
        await response.send_asgi(send, encode_headers(response))
        return
    start: ResponseStart = {
        "type": "http.response.start",
        "status": response.status_code,
        "headers": encode_headers(response),
    }
    await send(start)
    if not isinstance(response, StreamingHttpResponse):
        content: bytes = getattr(response, "content", b"")
        await send({"type": "http.response.body", "body": content, "more_body": False})
        return
    try:
        async with aclosing(aiter(response)) as parts:
            async for part in parts:
                await send({"type": "http.response.body", "body": bytes(part), "more_body": True})
    except StreamCut as cut:
        # No last message: the server closes the connection (as the handler does).
        logger.warning("streamed response cut: %s", cut)
        return
    await send(_END_OF_BODY)


def _sends_for_long(response: HttpResponseBase) -> bool:
    """Whether sending may take long: more than one chunk of a file, or a stream."""
    if isinstance(response, AsyncFileResponse):
        body = response.plan.body
        length = sum(len(part) if isinstance(part, bytes) else part.length for part in body)
        return length > response.block_size
    return isinstance(response, StreamingHttpResponse)


class _Disconnected(Exception):
    """The client went away."""


async def _until_disconnect(receive: Receive, sending: Awaitable[None]) -> None:
    """Await ``sending``, cancelled if the client goes away first (as Django's handler does)."""
    try:
        try:
            async with asyncio.TaskGroup() as group:
                listener = group.create_task(_listen_for_disconnect(receive))
                await sending
                listener.cancel()
        except* _Disconnected:
            pass
    except BaseExceptionGroup as failed:
        if len(failed.exceptions) == 1:
            raise failed.exceptions[0] from None
        raise


async def _listen_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass  # the request's body: a GET or HEAD has nothing to read in it
    raise _Disconnected


def _release(response: HttpResponseBase) -> None:
    """``response.close()`` without its ``request_finished`` signal (no signal on the fast path).

    Django's private ``_resource_closers`` (Django 5.2 and 6: the closers
    ``close()`` calls): no public way closes a response without the signal.
    """
    closers: list[Callable[[], object]] = getattr(response, "_resource_closers", [])
    for closer in closers:
        try:
            closer()
        except Exception:
            logger.exception("closing a fast-path response failed")
    closers.clear()
