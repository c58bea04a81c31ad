"""Serving from storages through real servers: one suite for every backend, then MinIO faults.

Backends (``backend`` fixture), all serving the same media tree:

- ``filesystem``: ``serve(document_root=MEDIA_ROOT)``, the reference;
- ``filesystem-storage``: ``serve(storage="default")``, a FileSystemStorage;
- ``generic-storage``: a Storage fileresponse does not know (``StorageSource``);
- ``minio``: a MinioStorage on the suite's S3 server (the juicefs gateway, or the
  MinIO named by ``FILERESPONSE_TEST_MINIO_*``), objects under ``media/``.

The servers run ``tests/project`` with the S3 server in their environment; the
``minio-counted`` storage reaches it through :class:`tests.s3server.CountingProxy`,
which records every request, so that HEAD and conditional requests can be shown to
make no GET. Requests go over raw sockets (:mod:`tests.rawhttp`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock
from urllib.parse import quote, urlsplit

import httpx
import psutil
import pytest

from tests import rawhttp
from tests.rawhttp import RawResponse
from tests.s3server import ENV_PREFIX, CountingProxy, S3Target
from tests.servers import (
    BIG_FILE_SIZE,
    NON_ASCII_NAME,
    SECRET_MARKER,
    SERVER_KINDS,
    LiveServer,
    MediaTree,
    build_media_tree,
)
from tests.test_live import parse_byteranges

pytestmark = pytest.mark.live

N = BIG_FILE_SIZE
SERVERS = ["uvicorn-patched", "uvicorn-stock", "gunicorn-uvicorn", "gunicorn-wsgi"]
ASYNC_SERVERS = ["uvicorn-patched", "uvicorn-stock", "gunicorn-uvicorn"]
BACKEND_PREFIXES = {
    "filesystem": "/files/",
    "filesystem-storage": "/storage/default/",
    "generic-storage": "/storage/generic/",
    "minio": "/storage/minio/",
}
BACKENDS = [
    pytest.param(name, marks=pytest.mark.minio) if name == "minio" else name
    for name in BACKEND_PREFIXES
]
OUTSIDE_KEY = "outside/secret.txt"


# ---------------------------------------------------------------- fixtures


@dataclass
class StorageServer(LiveServer):
    """A LiveServer whose process also gets ``extra_env`` (the S3 server to use)."""

    extra_env: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        with mock.patch.dict(os.environ, self.extra_env):
            super().start()


class StorageServerPool:
    def __init__(self, media: MediaTree, log_dir: Path, env: dict[str, str]) -> None:
        self.media, self.log_dir, self.env = media, log_dir, env
        self._servers: dict[str, StorageServer] = {}

    def get(self, name: str) -> StorageServer:
        if name not in self._servers:
            server = StorageServer(
                SERVER_KINDS[name], self.media, self.log_dir / f"{name}.log", extra_env=self.env
            )
            server.start()
            self._servers[name] = server
        return self._servers[name]

    def close(self) -> None:
        for server in self._servers.values():
            server.stop()


@pytest.fixture(scope="session")
def storage_media(tmp_path_factory: pytest.TempPathFactory) -> MediaTree:
    return build_media_tree(tmp_path_factory.mktemp("storage-media"))


@dataclass
class S3Setup:
    target: S3Target
    proxy: CountingProxy | None


@pytest.fixture(scope="session")
def s3_setup(s3: S3Target, storage_media: MediaTree) -> Iterator[S3Setup]:
    """The media tree uploaded under ``media/`` (and a secret outside it), and the proxy."""
    client = s3.client()
    for relative, content in storage_media.files.items():
        client.put_object(
            s3.bucket, f"media/{relative}", _stream(content), len(content), _type(relative)
        )
    secret = SECRET_MARKER + b"\n"
    client.put_object(s3.bucket, OUTSIDE_KEY, _stream(secret), len(secret), "text/plain")
    huge = huge_object()
    client.put_object(s3.bucket, HUGE_KEY, _stream(huge), len(huge), "application/octet-stream")
    proxy = None if s3.secure else CountingProxy(s3.endpoint)
    yield S3Setup(s3, proxy)
    if proxy is not None:
        proxy.close()


# Larger than every socket buffer between the gateway, the server and a client
# (a few MiB each on loopback), so that it cannot all be in flight at once.
HUGE_KEY = "media/huge.bin"
HUGE_SIZE = 64 * 1024 * 1024


@functools.cache
def huge_object() -> bytes:
    return random.Random(20261124).randbytes(HUGE_SIZE)


def _stream(content: bytes) -> object:
    import io

    return io.BytesIO(content)


def _type(relative: str) -> str:
    import mimetypes

    return mimetypes.guess_type(relative)[0] or "application/octet-stream"


@pytest.fixture(scope="session")
def storage_servers(
    request: pytest.FixtureRequest,
    storage_media: MediaTree,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StorageServerPool]:
    env: dict[str, str] = {}
    try:
        setup: S3Setup = request.getfixturevalue("s3_setup")
    except pytest.skip.Exception:
        pass  # no S3 server: the filesystem backends still run
    else:
        proxy_endpoint = {} if setup.proxy is None else {"PROXY_ENDPOINT": setup.proxy.endpoint}
        env = setup.target.environ(
            **{ENV_PREFIX + key: value for key, value in proxy_endpoint.items()}
        )
    pool = StorageServerPool(storage_media, tmp_path_factory.mktemp("storage-logs"), env)
    yield pool
    pool.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "minio":
        request.getfixturevalue("s3_setup")
    return str(request.param)


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest, storage_servers: StorageServerPool) -> LiveServer:
    return storage_servers.get(request.param)


@pytest.fixture
def patched(storage_servers: StorageServerPool) -> LiveServer:
    return storage_servers.get("uvicorn-patched")


def fetch(
    server: LiveServer, target: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> RawResponse:
    return rawhttp.request(server.host, server.port, method, target, headers, timeout=30)


def url(backend: str, relative: str) -> str:
    return BACKEND_PREFIXES[backend] + quote(relative)


# ---------------------------------------------------------------- one suite, every backend


@pytest.mark.parametrize(
    "relative", ["big.bin", "small.txt", NON_ASCII_NAME, "nested/dir/deep.txt", "empty.txt"]
)
def test_get_sends_the_whole_file(
    server: LiveServer, backend: str, storage_media: MediaTree, relative: str
) -> None:
    response = fetch(server, url(backend, relative))

    content = storage_media.files[relative]
    assert response.status == 200, response.body[:300]
    assert response.body == content
    assert response.header("Content-Length") == str(len(content))
    assert response.header("Accept-Ranges") == "bytes"
    assert response.header("ETag")
    assert response.header("Last-Modified")
    text_type = "text/plain; charset=utf-8"  # the same from every backend
    expected_type = "application/octet-stream" if relative.endswith(".bin") else text_type
    assert response.header("Content-Type") == expected_type


def test_head_has_the_headers_of_get_and_no_body(server: LiveServer, backend: str) -> None:
    get = fetch(server, url(backend, "big.bin"))
    head = fetch(server, url(backend, "big.bin"), method="HEAD")

    assert head.status == 200
    assert head.wire_body == b""
    for name in ("Content-Length", "Content-Type", "ETag", "Last-Modified", "Accept-Ranges"):
        assert head.header(name) == get.header(name), name


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, N - 1),
        ("bytes=-500", N - 500, N - 1),
        ("bytes=0-", 0, N - 1),  # the whole file: 206 too
        ("bytes=4194304-6291455", 4 * 2**20, 6 * 2**20 - 1),
    ],
)
def test_single_range(
    server: LiveServer,
    backend: str,
    storage_media: MediaTree,
    range_header: str,
    first: int,
    last: int,
) -> None:
    response = fetch(server, url(backend, "big.bin"), {"Range": range_header})

    assert response.status == 206
    assert response.header("Content-Range") == f"bytes {first}-{last}/{N}"
    assert response.body == storage_media.files["big.bin"][first : last + 1]


def test_multiple_ranges(server: LiveServer, backend: str, storage_media: MediaTree) -> None:
    content = storage_media.files["big.bin"]

    response = fetch(server, url(backend, "big.bin"), {"Range": "bytes=100-199,-10,0-9"})

    assert response.status == 206
    assert parse_byteranges(response) == [
        (f"bytes 100-199/{N}", "application/octet-stream", content[100:200]),
        (f"bytes {N - 10}-{N - 1}/{N}", "application/octet-stream", content[-10:]),
        (f"bytes 0-9/{N}", "application/octet-stream", content[:10]),
    ]


def test_unsatisfiable_range_is_416(server: LiveServer, backend: str) -> None:
    response = fetch(server, url(backend, "small.txt"), {"Range": "bytes=999999-"})

    assert response.status == 416
    assert (
        response.header(
            "Content-Range",
        )
        is not None
    )


def test_conditional_requests(server: LiveServer, backend: str, storage_media: MediaTree) -> None:
    target = url(backend, "small.txt")
    first = fetch(server, target)
    etag, last_modified = first.header("ETag"), first.header("Last-Modified")
    assert etag
    assert last_modified

    not_modified = fetch(server, target, {"If-None-Match": etag})
    assert (not_modified.status, not_modified.wire_body) == (304, b"")
    assert not_modified.header("ETag") == etag
    assert fetch(server, target, {"If-Modified-Since": last_modified}).status == 304
    assert fetch(server, target, {"If-Match": '"another"'}).status == 412
    assert (
        fetch(server, target, {"If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}).status
        == 412
    )
    partial = fetch(server, target, {"Range": "bytes=0-9", "If-Range": etag})
    assert (partial.status, partial.body) == (206, storage_media.files["small.txt"][:10])
    stale = fetch(server, target, {"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert (stale.status, stale.body) == (200, storage_media.files["small.txt"])


@pytest.mark.parametrize("relative", ["missing.txt", "nested", "nested/", "nested/dir/"])
def test_missing_files_and_directories_are_404(
    server: LiveServer, backend: str, relative: str
) -> None:
    assert fetch(server, BACKEND_PREFIXES[backend] + relative).status == 404


@pytest.mark.parametrize(
    "suffix",
    [
        "../outside/secret.txt",
        "%2e%2e/outside/secret.txt",
        "nested/../../outside/secret.txt",
        "..%2foutside%2fsecret.txt",
        "..%5coutside%5csecret.txt",
        "%2foutside/secret.txt",
        "small.txt%00",
        "C:%5cWindows%5cwin.ini",
    ],
)
def test_traversal_never_leaves_the_root_or_prefix(
    patched: LiveServer, backend: str, suffix: str
) -> None:
    response = fetch(patched, BACKEND_PREFIXES[backend] + suffix)

    assert response.status in (400, 404), (response.status, response.body[:200])
    assert SECRET_MARKER not in response.wire_body


def test_post_is_405(patched: LiveServer, backend: str) -> None:
    response = fetch(patched, url(backend, "small.txt"), {"Content-Length": "0"}, method="POST")

    assert response.status == 405


# ---------------------------------------------------------------- MinIO: requests to the storage


@pytest.fixture
def counted(s3_setup: S3Setup, patched: LiveServer) -> CountingProxy:
    if s3_setup.proxy is None:
        pytest.skip("the counting proxy needs a plain-http S3 server")
    return s3_setup.proxy


@pytest.mark.minio
def test_head_and_conditional_requests_make_no_get(
    patched: LiveServer, counted: CountingProxy
) -> None:
    target = "/storage/minio-counted/big.bin"
    etag = fetch(patched, target, method="HEAD").header("ETag")
    assert etag
    before = counted.counts()

    answers = [
        fetch(patched, target, method="HEAD").status,
        fetch(patched, target, {"If-None-Match": etag}).status,
        fetch(patched, target, {"If-Match": '"other"'}).status,
        fetch(patched, target, {"Range": f"bytes={N}-"}).status,
        fetch(patched, target, {"If-None-Match": etag}, method="HEAD").status,
    ]

    after = counted.counts()
    assert answers == [200, 304, 412, 416, 304]
    assert after["GET"] == before["GET"], "a stat-only answer fetched the body"
    assert after["HEAD"] - before["HEAD"] == len(answers)


@pytest.mark.minio
def test_ranges_become_ranged_gets_of_the_stat_version(
    patched: LiveServer, counted: CountingProxy, storage_media: MediaTree
) -> None:
    target = "/storage/minio-counted/big.bin"
    seen_before = len(counted.seen())

    response = fetch(patched, target, {"Range": "bytes=100-199,5000-5099"})

    assert response.status == 206
    content = storage_media.files["big.bin"]
    assert [part[2] for part in parse_byteranges(response)] == [
        content[100:200],
        content[5000:5100],
    ]
    gets = [seen for seen in counted.seen()[seen_before:] if seen.method == "GET"]
    assert [seen.headers.get("range") for seen in gets] == ["bytes=100-199", "bytes=5000-5099"]
    assert all(seen.headers.get("if-match") == response.header("ETag") for seen in gets)


# ---------------------------------------------------------------- MinIO: delivery modes


@pytest.mark.minio
def test_presigned_redirect_leads_a_plain_client_to_the_bytes(
    patched: LiveServer, s3_setup: S3Setup, storage_media: MediaTree
) -> None:
    target = f"{patched.base_url}/storage/minio-presigned/big.bin"
    content = storage_media.files["big.bin"]
    with httpx.Client(timeout=30) as client:
        redirect = client.get(target)
        assert redirect.status_code == 302
        location = redirect.headers["Location"]
        assert urlsplit(location).netloc == s3_setup.target.endpoint
        assert "X-Amz-Expires=120" in location
        assert redirect.headers["Cache-Control"] == "private, no-store"

        followed = client.get(target, follow_redirects=True)
        assert followed.status_code == 200
        assert followed.content == content

        ranged = client.get(target, headers={"Range": "bytes=10-19"}, follow_redirects=True)
        assert ranged.status_code == 206
        assert ranged.content == content[10:20]

        escape = client.get(f"{patched.base_url}/storage/minio-presigned/%2e%2e/{OUTSIDE_KEY}")
        assert escape.status_code == 404


@pytest.mark.minio
def test_public_redirect_leads_to_the_public_object(
    patched: LiveServer, s3_setup: S3Setup, storage_media: MediaTree
) -> None:
    s3 = s3_setup.target
    target = f"{patched.base_url}/storage/minio-public/{quote(NON_ASCII_NAME)}"
    with httpx.Client(timeout=30) as client:
        redirect = client.get(target)
        assert redirect.status_code == 302
        assert redirect.headers["Location"] == (
            f"{s3.scheme}://{s3.endpoint}/{s3.bucket}/media/{quote(NON_ASCII_NAME)}"
        )
        if not s3.own_bucket:
            return  # the suite does not change the policy of a bucket it was given
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": ["*"]},
                    "Action": ["s3:GetObject"],
                    "Resource": [f"arn:aws:s3:::{s3.bucket}/media/*"],
                }
            ],
        }
        s3.client().set_bucket_policy(s3.bucket, json.dumps(policy))
        followed = client.get(target, follow_redirects=True)
    assert followed.status_code == 200
    assert followed.content == storage_media.files[NON_ASCII_NAME]


# ---------------------------------------------------------------- MinIO: resources and faults

ABORTED_DOWNLOADS = 500
CONCURRENT_ABORTS = 50
SETTLE_TIMEOUT = 20.0
FD_SLACK = 4


def established(process: psutil.Process, port: int, *, remote: bool) -> int:
    """Established TCP connections of ``process`` to (``remote``) or on ``port``."""
    connections = process.net_connections(kind="tcp")
    return sum(
        1
        for item in connections
        if item.status == psutil.CONN_ESTABLISHED
        and (item.raddr and item.raddr.port == port if remote else item.laddr.port == port)
    )


@pytest.mark.minio
@pytest.mark.parametrize("server_name", ASYNC_SERVERS)
async def test_aborted_downloads_leave_no_connection_or_descriptor_behind(
    storage_servers: StorageServerPool, s3_setup: S3Setup, server_name: str
) -> None:
    server = storage_servers.get(server_name)
    process = psutil.Process(server.pid)
    s3_port = int(s3_setup.target.endpoint.rpartition(":")[2])
    target = "/storage/minio/big.bin"
    # Warm up at the same concurrency, so that the client pool has its connections.
    async with asyncio.timeout(60):
        await asyncio.gather(
            *(
                rawhttp.adownload_and_discard(server.host, server.port, target)
                for _ in range(CONCURRENT_ABORTS)
            )
        )
    await asyncio.sleep(0.5)
    baseline_fds = process.num_fds()
    baseline_storage = established(process, s3_port, remote=True)

    requests = [
        (target, {}),
        (target, {"Range": "bytes=1000-"}),
        (target, {"Range": "bytes=0-99,1000-"}),
    ]
    limit = asyncio.Semaphore(CONCURRENT_ABORTS)
    peak_storage = 0

    async def abort(number: int) -> int:
        nonlocal peak_storage
        path, headers = requests[number % len(requests)]
        async with limit:
            received = await rawhttp.aabort_download(server.host, server.port, path, headers)
        if number % 25 == 0:
            peak_storage = max(peak_storage, established(process, s3_port, remote=True))
        return received

    async with asyncio.timeout(120):
        received = await asyncio.gather(*(abort(number) for number in range(ABORTED_DOWNLOADS)))
    assert min(received) > 0

    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        fds = process.num_fds()
        clients = established(process, server.port, remote=False)
        storage = established(process, s3_port, remote=True)
        settled = fds <= baseline_fds + FD_SLACK and clients == 0
        settled = settled and storage <= max(baseline_storage, 1) + FD_SLACK
        if settled or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    summary = (
        f"{server.name}: {fds} fds (baseline {baseline_fds}), {clients} client connections, "
        f"{storage} storage connections (baseline {baseline_storage}, peak {peak_storage})"
    )
    assert settled, summary
    assert fetch(server, "/storage/minio/small.txt").status == 200


@pytest.fixture
def gateway(s3_setup: S3Setup) -> Iterator[object]:
    """The suite's own gateway, running again after the test whatever happened."""
    gateway = s3_setup.target.gateway
    if gateway is None:
        pytest.skip("the S3 server is external: the suite cannot stop it")
    try:
        yield gateway
    finally:
        gateway.start()


@pytest.mark.minio
@pytest.mark.parametrize("server_name", ["uvicorn-patched", "gunicorn-wsgi"])
def test_storage_down_is_503_then_recovers_by_itself(
    storage_servers: StorageServerPool, gateway: object, server_name: str
) -> None:
    from tests.s3server import JuiceFSGateway

    assert isinstance(gateway, JuiceFSGateway)
    server = storage_servers.get(server_name)
    assert fetch(server, "/storage/minio/small.txt").status == 200

    gateway.kill()
    for method in ("GET", "HEAD", "GET"):
        started = time.monotonic()
        response = fetch(server, "/storage/minio/small.txt", method=method)
        elapsed = time.monotonic() - started
        assert response.status == 503, (method, response.status, response.body[:300])
        assert response.header("Retry-After") == "5"
        assert elapsed < 3.0, f"{method} took {elapsed:.1f} s to fail"
    presigned = fetch(server, "/storage/minio-presigned/small.txt")
    assert presigned.status == 302  # signing needs no request to the storage

    gateway.start()
    response = fetch(server, "/storage/minio/small.txt")
    assert response.status == 200, response.body[:300]
    assert fetch(server, "/storage/minio/big.bin", {"Range": "bytes=0-9"}).status == 206


@pytest.mark.minio
async def test_storage_dying_mid_download_cuts_the_response_short(
    patched: LiveServer, gateway: object, storage_media: MediaTree
) -> None:
    from tests.s3server import JuiceFSGateway

    assert isinstance(gateway, JuiceFSGateway)
    content = huge_object()
    # A small receive buffer: the server can only send ahead of what this client reads.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (patched.host, patched.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        writer.write(rawhttp.build_request("GET", "/storage/minio/huge.bin", patched.base_url[7:]))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        body = await reader.readexactly(64 * 1024)
        await asyncio.to_thread(gateway.kill)
        async with asyncio.timeout(30):
            while chunk := await reader.read(1 << 16):
                body += chunk
    finally:
        writer.close()

    assert len(body) < len(content), "the whole object arrived although the storage died"
    assert body == content[: len(body)], "the bytes sent are not the object's"
    log = patched.new_log()
    assert "storage stream failed after" in log, log[-3000:]


@pytest.mark.minio
def test_storage_that_hangs_is_503_after_the_read_timeout(
    patched: LiveServer, counted: CountingProxy
) -> None:
    target = "/storage/minio-counted/small.txt"
    assert fetch(patched, target).status == 200
    counted.stall()
    try:
        started = time.monotonic()
        response = fetch(patched, target)
        elapsed = time.monotonic() - started
    finally:
        counted.resume()

    assert response.status == 503
    assert response.header("Retry-After")
    assert 2.5 < elapsed < 8, f"{elapsed:.1f} s (read timeout 3 s)"
    assert fetch(patched, target).status == 200
