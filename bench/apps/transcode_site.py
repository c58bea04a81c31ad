"""Peer (b) of bench/media.py, the transcode users write today: ffmpeg to a file, then serve it.

Starlette: ``GET /transcode/<path>`` runs ``BENCH_TRANSCODE_ARGV`` (JSON: the
library's ffmpeg arguments, with the items ``{input}`` and ``{output}``) to its end, then
sends the file with ``FileResponse`` and deletes it afterwards.
"""

import asyncio
import json
import os
import shutil
import tempfile

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, PlainTextResponse
from starlette.routing import Route

ROOT = os.path.realpath(os.environ.get("BENCH_DOC_ROOT", "/tmp"))
ARGV = json.loads(os.environ.get("BENCH_TRANSCODE_ARGV") or "[]")


async def transcode(request):
    source = os.path.realpath(os.path.join(ROOT, request.path_params["path"]))  # noqa: ASYNC240
    if not source.startswith(ROOT + os.sep) or not os.path.isfile(source):  # noqa: ASYNC240
        return PlainTextResponse("Not Found", status_code=404)
    directory = tempfile.mkdtemp(prefix="transcode-")
    output = os.path.join(directory, "output.mp4")
    argv = [{"{input}": source, "{output}": output}.get(item, item) for item in ARGV]
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, errors = await process.communicate()
    if process.returncode != 0 or not os.path.isfile(output):  # noqa: ASYNC240
        shutil.rmtree(directory, ignore_errors=True)
        return PlainTextResponse(errors.decode(errors="replace")[-500:], status_code=500)
    cleanup = BackgroundTask(shutil.rmtree, directory, ignore_errors=True)
    return FileResponse(output, media_type="video/mp4", background=cleanup)


app = Starlette(routes=[Route("/transcode/{path:path}", transcode)])
