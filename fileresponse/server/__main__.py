"""``python -m fileresponse.server``: uvicorn's command line, serving files with ``sendfile``.

Takes every option of ``uvicorn`` (``--workers``, ``--loop``, ``--uds``,
...) and one more, ``--header-timeout SECONDS`` (``0``: none), which sets
``FILERESPONSE_HEADER_TIMEOUT`` for the protocol::

    python -m fileresponse.server mysite.asgi:application --port 8000 --header-timeout 5

An ``--http`` option given here replaces the library's protocol.
"""

from __future__ import annotations

import os
import sys

PROTOCOL = "fileresponse.server.protocol:HttpToolsProtocol"


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    for index, arg in enumerate(args):
        if arg == "--header-timeout" and index + 1 < len(args):
            os.environ["FILERESPONSE_HEADER_TIMEOUT"] = args[index + 1]
            del args[index : index + 2]
            break
        if arg.startswith("--header-timeout="):
            os.environ["FILERESPONSE_HEADER_TIMEOUT"] = arg.partition("=")[2]
            del args[index]
            break
    # Imported after the environment is set: the protocol reads it once.
    import uvicorn

    uvicorn.main(args=["--http", PROTOCOL, *args], prog_name="python -m fileresponse.server")


if __name__ == "__main__":
    main()
