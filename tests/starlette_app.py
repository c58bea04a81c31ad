"""A Starlette application for the live tests: any ASGI app gets the library's sendfile.

Starlette's ``FileResponse`` sends ``http.response.pathsend`` when the server
offers it; ``FILERESPONSE_TEST_MEDIA_ROOT`` is the directory served under ``/files/``.
"""

import os

from starlette.applications import Starlette
from starlette.responses import FileResponse, PlainTextResponse
from starlette.routing import Route

ROOT = os.environ.get("FILERESPONSE_TEST_MEDIA_ROOT", ".")


async def serve(request):  # type: ignore[no-untyped-def]
    return FileResponse(os.path.join(ROOT, request.path_params["name"]))


async def ready(request):  # type: ignore[no-untyped-def]
    return PlainTextResponse("ready")


app = Starlette(routes=[Route("/files/{name}", serve), Route("/__ready__", ready)])
