"""Starlette app serving files with starlette.responses.FileResponse (peer starlette-uvicorn).

Same URL layout as the Django sites: /files/<path>. The stat runs in a worker
thread (as StaticFiles does) and is handed to FileResponse, so it is not repeated.
"""

import os
import stat

import anyio.to_thread
from starlette.applications import Starlette
from starlette.responses import FileResponse, PlainTextResponse
from starlette.routing import Route

ROOT = os.path.realpath(os.environ.get("BENCH_DOC_ROOT", "/tmp"))


async def serve(request):
    # realpath resolves symlinks (a few syscalls), like the Django views' safe_join does
    full = os.path.realpath(os.path.join(ROOT, request.path_params["path"]))  # noqa: ASYNC240
    if not full.startswith(ROOT + os.sep):
        return PlainTextResponse("Not Found", status_code=404)
    try:
        st = await anyio.to_thread.run_sync(os.stat, full)
    except OSError:
        return PlainTextResponse("Not Found", status_code=404)
    if not stat.S_ISREG(st.st_mode):
        return PlainTextResponse("Not Found", status_code=404)
    return FileResponse(full, stat_result=st)


app = Starlette(routes=[Route("/files/{path:path}", serve)])
