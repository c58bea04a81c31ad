"""The ASGI messages this library sends, as TypedDicts (ASGI HTTP spec 2.x)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Literal, TypedDict

__all__ = [
    "PATHSEND",
    "ZEROCOPYSEND",
    "ResponseBody",
    "ResponsePathsend",
    "ResponseStart",
    "ResponseZerocopysend",
    "Send",
]

#: The names of the two ASGI extensions of a file sent by the server.
PATHSEND: Final = "http.response.pathsend"
ZEROCOPYSEND: Final = "http.response.zerocopysend"


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


class ResponseZerocopysend(TypedDict):
    """The ``http.response.zerocopysend`` extension: the server sends bytes of an open file.

    ``count`` bytes of ``file`` from ``offset`` (``sendfile(2)`` where the
    server can), then more messages if ``more_body``.
    """

    type: Literal["http.response.zerocopysend"]
    file: Any
    offset: int
    count: int
    more_body: bool


#: An ASGI ``send`` callable (typed as Django's stubs type it).
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
