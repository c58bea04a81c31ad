"""Calling Django's handlers in-process: ASGI (patched and stock) and WSGI.

The second test tier: status, headers and bytes without a server. Each call
returns an :class:`Exchange`, so one table of requests can be checked the
same way under every handler.
"""

from __future__ import annotations

import asyncio
import io
import re
import sys
import wsgiref.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler

from fileresponse.handlers import AsyncFileASGIHandler

PATHSEND = {"http.response.pathsend": {}}


@dataclass
class Exchange:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    messages: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def comparable_headers(self) -> list[tuple[str, str]]:
        """Headers without the random multipart boundary, nor the durations of Server-Timing."""
        return [(key.lower(), _comparable(key.lower(), value)) for key, value in self.headers]


def _comparable(name: str, value: str) -> str:
    if name == "content-type":
        return value.split("boundary=")[0]
    if name == "server-timing":
        return re.sub(r";dur=[0-9.]+", ";dur=N", value)
    return value


async def call_asgi(
    app: Callable[..., Any],
    path: str,
    *,
    method: str = "GET",
    headers: Iterable[tuple[str, str]] = (),
    extensions: dict[str, Any] | None = None,
    disconnect_after: int | None = None,
) -> Exchange:
    """One request; ``disconnect_after`` N body messages, the client goes away."""
    sent: list[dict[str, Any]] = []
    disconnected = asyncio.Event()
    request_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        bodies = sum(1 for item in sent if item["type"] == "http.response.body")
        if disconnect_after is not None and bodies >= disconnect_after:
            disconnected.set()
            await asyncio.sleep(0)

    raw_path = path.encode("utf-8")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": raw_path,
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")]
        + [(key.lower().encode("latin-1"), value.encode("latin-1")) for key, value in headers],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
        "extensions": extensions or {},
    }
    await app(scope, receive, send)
    start = sent[0]
    assert start["type"] == "http.response.start", start
    body = b"".join(message.get("body", b"") for message in sent[1:])
    for message in sent[1:]:
        if message["type"] == "http.response.pathsend":
            body += await asyncio.to_thread(Path(message["path"]).read_bytes)
    return Exchange(
        status=start["status"],
        headers=[
            (key.decode("latin-1"), value.decode("latin-1")) for key, value in start["headers"]
        ],
        body=body,
        messages=[message["type"] for message in sent],
    )


def call_wsgi(
    path: str,
    *,
    method: str = "GET",
    headers: Iterable[tuple[str, str]] = (),
    file_wrapper: bool = True,
) -> Exchange:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        # PEP 3333: the bytes of the path, decoded as latin-1.
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if file_wrapper:
        environ["wsgi.file_wrapper"] = wsgiref.util.FileWrapper
    for key, value in headers:
        environ["HTTP_" + key.upper().replace("-", "_")] = value
    started: dict[str, Any] = {}

    def start_response(
        status: str, response_headers: list[tuple[str, str]], exc_info: Any = None
    ) -> None:
        started["status"] = int(status.split()[0])
        started["headers"] = response_headers

    result = WSGIHandler()(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return Exchange(status=started["status"], headers=started["headers"], body=body)


def patched() -> AsyncFileASGIHandler:
    return AsyncFileASGIHandler()


def stock() -> ASGIHandler:
    return ASGIHandler()
