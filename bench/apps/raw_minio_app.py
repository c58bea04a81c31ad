"""A minimal raw ASGI app, a hand-written S3 proxy: the ceiling of bench/serve_minio.py.

Per request ``GET /files/<key>``: one miniopy-async ``get_object`` of the key, then a ``200``
with the object response's ``Content-Length`` and ``Content-Type``, and its body sent to
``send`` in the pieces the client library returns: ``iter_any()``, whatever has arrived, no
re-chunking. Nothing else: no stat, no ranges, no conditional requests, no framework.

Its aiohttp session has the settings of fileresponse's pooled client
(fileresponse.storage.minio.clients): 100 connections, ``read_bufsize`` 256 KiB, no
decompression, a 30 s read timeout, so that only what each app does with the bytes differs.

Configured by BENCH_MINIO_ENDPOINT, BENCH_MINIO_ACCESS_KEY, BENCH_MINIO_SECRET_KEY and
BENCH_MINIO_BUCKET (set by bench/serve_minio.py). BENCH_RAW_CHUNK chooses how the body is
read: ``0`` (default) ``iter_any()``; ``N > 0`` ``iter_chunked(N)``, pieces of at most N bytes
(peer raw-minio-app-64k: N = 65536, fileresponse's CHUNK_SIZE); ``-1`` ``iter_chunks()``, the
pieces one by one, unjoined.
"""

import os

import aiohttp
from miniopy_async.api import Minio
from miniopy_async.error import S3Error

ENDPOINT = os.environ.get("BENCH_MINIO_ENDPOINT", "127.0.0.1:9000")
ACCESS_KEY = os.environ.get("BENCH_MINIO_ACCESS_KEY", "")
SECRET_KEY = os.environ.get("BENCH_MINIO_SECRET_KEY", "")
BUCKET = os.environ.get("BENCH_MINIO_BUCKET", "bench")
CHUNK = int(os.environ.get("BENCH_RAW_CHUNK", "0"))
PREFIX = "/files/"

_client: Minio | None = None


def client() -> Minio:
    """The app's client, made in the server's event loop on the first request."""
    global _client
    if _client is None:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100),
            timeout=aiohttp.ClientTimeout(total=None, connect=5, sock_connect=5, sock_read=30),
            auto_decompress=False,
            read_bufsize=256 * 1024,
        )
        _client = Minio(
            ENDPOINT,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            secure=False,
            region="us-east-1",
            session=session,
        )
    return _client


def pieces(content: aiohttp.StreamReader):
    if CHUNK > 0:
        return content.iter_chunked(CHUNK)
    if CHUNK == 0:
        return content.iter_any()
    return (piece async for piece, _ in content.iter_chunks())


async def plain(send, status: int, text: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text})


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if not path.startswith(PREFIX):
        await plain(send, 404, b"Not Found")
        return
    try:
        response = await client().get_object(BUCKET, path[len(PREFIX) :])
    except S3Error as error:
        await plain(send, 404 if error.code == "NoSuchKey" else 502, error.code.encode())
        return
    try:
        headers = [
            (b"content-length", response.headers["Content-Length"].encode("latin-1")),
            (b"content-type", response.headers.get("Content-Type", "").encode("latin-1")),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        async for piece in pieces(response.content):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        response.release()
