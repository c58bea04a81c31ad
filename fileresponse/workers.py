"""``gunicorn -k fileresponse.workers.UvicornWorker``: uvicorn workers sending with ``sendfile``.

The worker of the ``uvicorn-worker`` package, with the library's protocol
(:class:`fileresponse.server.protocol.HttpToolsProtocol`): the
``http.response.zerocopysend`` and ``http.response.pathsend`` extensions,
and a time limit on request heads (``FILERESPONSE_HEADER_TIMEOUT`` in the
environment, seconds, default 10)::

    FILERESPONSE_HEADER_TIMEOUT=5 gunicorn mysite.asgi:application \\
        -k fileresponse.workers.UvicornWorker --workers 4
"""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker as _UvicornWorker

__all__ = ["UvicornWorker"]


class UvicornWorker(_UvicornWorker):  # type: ignore[misc]  # uvicorn-worker has no types
    """uvicorn's gunicorn worker with :class:`~fileresponse.server.protocol.HttpToolsProtocol`."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "auto",
        "http": "fileresponse.server.protocol:HttpToolsProtocol",
    }
