"""The ASGI messages this library sends, as TypedDicts (ASGI HTTP spec 2.x)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypedDict

__all__ = ["ResponseBody", "ResponsePathsend", "ResponseStart", "Send"]


class ResponseStart(TypedDict):
    type: Literal["http.response.start"]
    status: int
    headers: list[tuple[bytes, bytes]]


class ResponseBody(TypedDict):
    type: Literal["http.response.body"]
    body: bytes
    more_body: bool


class ResponsePathsend(TypedDict):
    """The ``http.response.pathsend`` extension: the server sends the file itself."""

    type: Literal["http.response.pathsend"]
    path: str


#: An ASGI ``send`` callable (typed as Django's stubs type it).
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
