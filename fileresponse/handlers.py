"""The ASGI handler that lets file responses stream themselves.

:class:`AsyncFileASGIHandler` subclasses Django's ``ASGIHandler`` and
overrides two narrow hooks: ``run_get_response`` (to hand the connection's
ASGI extensions to the response) and ``send_response`` (to let an
:class:`~fileresponse.responses.AsyncFileResponse` send itself, and to end a
body cut by :class:`~fileresponse.exceptions.StreamCut` with one log line and
no last message). Every other response goes through Django's own code
unchanged. It also answers the ASGI lifespan protocol, which Django's handler
refuses, to end the derivative workers at shutdown. ``ASGIHandler`` is not
public API, so the test suite runs against every supported Django version.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase

from .asgi_types import Send
from .exceptions import StreamCut
from .responses import AsyncFileResponse
from .threads import request_threads

__all__ = ["AsyncFileASGIHandler", "encode_headers"]

logger = logging.getLogger("fileresponse")

Receive = Callable[[], Awaitable[Mapping[str, Any]]]


def encode_headers(response: HttpResponseBase) -> list[tuple[bytes, bytes]]:
    """Response headers and cookies as ASGI byte pairs, as Django's handler encodes them."""
    # The (name, value) pairs as set, without the case-insensitive mapping's
    # look-up per name (``items()``): the same pairs, in the same order.
    store = getattr(response.headers, "_store", None)
    pairs = store.values() if isinstance(store, dict) else response.items()
    headers = [(name.encode("ascii"), value.encode("latin-1")) for name, value in pairs]
    headers.extend(
        (b"Set-Cookie", cookie.OutputString().encode("ascii"))
        for cookie in response.cookies.values()
    )
    return headers


class AsyncFileASGIHandler(ASGIHandler):
    """Django's ASGI handler, with file responses that send themselves."""

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.handle_lifespan(receive, send)
            return
        threads = request_threads() if scope["type"] == "http" else None
        if threads is None:
            await super().__call__(scope, receive, send)
            return
        # Django's __call__ enters a ThreadSensitiveContext of its own, which then
        # finds this one and uses its (borrowed, already running) thread.
        executor = threads.lend()
        try:
            async with threads.context(executor):
                await super().__call__(scope, receive, send)
        finally:
            threads.give_back(executor)

    async def handle_lifespan(self, receive: Receive, send: Send) -> None:
        """ASGI lifespan: nothing to start; at shutdown, end the derivative workers.

        The server sends the shutdown once its requests are done; the pool is
        then ended before the server's exit waits for it (see
        :mod:`fileresponse.derivatives.executor`).
        """
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # Imported here: a project without derivatives never loads the executor.
                from fileresponse.derivatives.executor import close_executors

                # It joins processes: off the event loop.
                await asyncio.get_running_loop().run_in_executor(None, close_executors)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def run_get_response(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = await super().run_get_response(request)
        if isinstance(response, AsyncFileResponse):
            scope: Mapping[str, Any] = getattr(request, "scope", {})
            response.asgi_extensions = scope.get("extensions") or {}
        return response

    async def send_response(self, response: HttpResponseBase, send: Send) -> None:
        if isinstance(response, AsyncFileResponse) and response.streams_itself:
            await response.send_asgi(send, encode_headers(response))
            return
        try:
            await super().send_response(response, send)
        except StreamCut as cut:
            # No last message: the server closes the connection, the client sees the
            # transfer incomplete (a traceback would say nothing more than this line).
            logger.warning("streamed response cut: %s", cut)
