"""The server side: uvicorn with ``sendfile(2)`` and a header timeout.

- :class:`~fileresponse.server.protocol.HttpToolsProtocol`: uvicorn's
  httptools protocol offering ``http.response.zerocopysend`` and
  ``http.response.pathsend``, and closing connections whose request head is
  late (``FILERESPONSE_HEADER_TIMEOUT``);
- ``python -m fileresponse.server``: uvicorn's command line with that protocol;
- :class:`fileresponse.workers.UvicornWorker`: the gunicorn worker.
"""

from .protocol import DEFAULT_HEADER_TIMEOUT, HttpToolsProtocol

__all__ = ["DEFAULT_HEADER_TIMEOUT", "HttpToolsProtocol"]
