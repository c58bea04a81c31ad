"""The ASGI handler that lets file responses stream themselves.

:class:`AsyncFileASGIHandler` subclasses Django's ``ASGIHandler`` and
overrides two narrow hooks: ``run_get_response`` (to hand the connection's
ASGI extensions to the response) and ``send_response`` (to let an
:class:`~fileresponse.responses.AsyncFileResponse` send itself). Every other
response goes through Django's own code unchanged. ``ASGIHandler`` is not
public API, so the test suite runs against every supported Django version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase

from .asgi_types import Send
from .responses import AsyncFileResponse

__all__ = ["AsyncFileASGIHandler", "encode_headers"]


def encode_headers(response: HttpResponseBase) -> list[tuple[bytes, bytes]]:
    """Response headers and cookies as ASGI byte pairs, as Django's handler encodes them."""
    headers = [(name.encode("ascii"), value.encode("latin-1")) for name, value in response.items()]
    headers.extend(
        (b"Set-Cookie", cookie.OutputString().encode("ascii"))
        for cookie in response.cookies.values()
    )
    return headers


class AsyncFileASGIHandler(ASGIHandler):
    """Django's ASGI handler, with file responses that send themselves."""

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
        await super().send_response(response, send)
