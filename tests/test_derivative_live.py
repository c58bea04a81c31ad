"""Single-flight on a real server: 100 concurrent requests for one missing derivative.

gunicorn runs 4 uvicorn workers (4 processes, each with its own event loop,
process pool and in-process single-flight); the 100 requests spread over
them. Exactly one ``generated`` record must reach the server's log, and all
100 bodies must be the same bytes, with the derivative storage on disk and on
MinIO (the suite's S3 server, see tests/s3server.py).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("PIL")
httpx = pytest.importorskip("httpx")
psutil = pytest.importorskip("psutil")

from fileresponse.derivatives.signing import signed_path  # noqa: E402
from fileresponse.derivatives.spec import parse_spec  # noqa: E402
from tests import images  # noqa: E402
from tests.fields import outcome_of  # noqa: E402
from tests.s3server import S3Target  # noqa: E402
from tests.servers import LiveServer, MediaTree, ServerKind  # noqa: E402

pytestmark = [pytest.mark.live, pytest.mark.slow]

WORKERS = 4
REQUESTS = 100
SPEC = "320x240 fill webp q=70"
GENERATED = re.compile(r"generated (\S+) in [0-9.]+ ms")


def _gunicorn_with_four_workers(port: int) -> list[str]:
    return [
        *(sys.executable, "-m", "gunicorn", "tests.project.asgi_patched:application"),
        *("--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS)),
        *("--worker-class", "uvicorn_worker.UvicornWorker"),
        *("--graceful-timeout", "2", "--timeout", "60", "--log-level", "warning"),
    ]


GUNICORN_4 = ServerKind(
    "gunicorn-uvicorn-4-workers",
    "patched",
    _gunicorn_with_four_workers,
    serves_in_child=False,  # four children: LiveServer's one-worker check does not apply
)


@contextmanager
def derivative_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]
) -> Iterator[LiveServer]:
    media_root = tmp_path / "media"
    media_root.mkdir()
    (tmp_path / "outside").mkdir()
    media = MediaTree(root=media_root, outside=tmp_path / "outside", files={})
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.derivatives_site.settings")
    monkeypatch.setenv("FILERESPONSE_TEST_LOCK_DIR", str(tmp_path / "locks"))
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    server = LiveServer(GUNICORN_4, media, tmp_path / "server.log")
    server.start()
    try:
        _wait_for_workers(server)
        yield server
    finally:
        server.stop()


def _wait_for_workers(server: LiveServer, seconds: float = 30.0) -> None:
    assert server.process is not None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if len(psutil.Process(server.process.pid).children()) == WORKERS:
            return
        time.sleep(0.05)
    raise AssertionError(f"gunicorn did not start {WORKERS} workers:\n{server.log_tail()}")


def _workers_with_connections(server: LiveServer) -> int:
    """How many gunicorn workers hold a client connection now."""
    assert server.process is not None
    busy = 0
    for worker in psutil.Process(server.process.pid).children():
        connections = worker.net_connections(kind="tcp")
        if any(
            connection.status == psutil.CONN_ESTABLISHED and connection.laddr.port == server.port
            for connection in connections
        ):
            busy += 1
    return busy


async def _burst(server: LiveServer, url: str) -> tuple[list[httpx.Response], int]:
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=120) as client:

        async def one(delay: float) -> httpx.Response:
            # Connections arrive a little apart, so that several workers accept some
            # (an event loop accepts every connection pending when it wakes).
            await asyncio.sleep(delay)
            return await client.get(url)

        responses = await asyncio.gather(*(one(index * 0.003) for index in range(REQUESTS)))
        spread = await asyncio.to_thread(_workers_with_connections, server)
    return list(responses), spread


def _check_burst(server: LiveServer, url: str) -> tuple[str, bytes]:
    responses, spread = asyncio.run(_burst(server, url))
    statuses = [response.status_code for response in responses]
    assert statuses == [200] * REQUESTS, server.log_tail()
    bodies = {response.content for response in responses}
    assert len(bodies) == 1, "100 identical bodies"
    (data,) = bodies
    assert images.decode(data).size == (320, 240)
    assert {response.headers["content-type"] for response in responses} == {"image/webp"}
    # RFC 9211: the one request whose run made it is a miss; those that waited for it
    # (in its process or in the others) are collapsed misses; late ones are hits.
    outcomes = [outcome_of(response.headers.get) for response in responses]
    assert outcomes.count("miss") == 1, outcomes
    assert set(outcomes) <= {"miss", "collapsed", "hit"}
    print({outcome: outcomes.count(outcome) for outcome in set(outcomes)})
    assert outcomes.count("collapsed") >= 1, outcomes
    print(f"requests reached {spread} of {WORKERS} workers")
    assert spread >= 2, "the requests reached several worker processes"
    log = server.log_tail(200_000)
    generated = GENERATED.findall(log)
    assert len(generated) == 1, f"exactly one processing run, got:\n{log[-4000:]}"
    assert "Traceback" not in log
    return generated[0], data


def _source(media_root: Path) -> str:
    name = f"photos/burst-{secrets.token_hex(4)}.jpg"
    (media_root / "photos").mkdir(exist_ok=True)
    (media_root / name).write_bytes(images.jpeg((2400, 1600)))
    return name


def test_one_run_for_100_concurrent_requests_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    derivatives = tmp_path / "derivatives"
    environ = {"FILERESPONSE_TEST_DERIVATIVES_ROOT": str(derivatives)}
    with derivative_server(tmp_path, monkeypatch, environ) as server:
        source = _source(server.media_root)
        url = "/derivatives/" + signed_path(source, parse_spec(SPEC))
        name, data = _check_burst(server, url)
        assert (derivatives / name).read_bytes() == data
        stored = [
            path.name
            for path in derivatives.rglob("*")
            if path.is_file() and ".locks" not in path.parts
        ]
        assert sorted(stored) == ["320x240_fill_q-70.webp", "source.json"]
        # A second burst is all hits.
        responses, _ = asyncio.run(_burst(server, url))
        assert {response.content for response in responses} == {data}
        assert {outcome_of(response.headers.get) for response in responses} == {"hit"}
        assert len(GENERATED.findall(server.log_tail(200_000))) == 1


@pytest.mark.minio
def test_one_run_for_100_concurrent_requests_on_minio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3: S3Target
) -> None:
    environ = s3.environ(FILERESPONSE_TEST_DERIVATIVES_STORAGE="minio")
    with derivative_server(tmp_path, monkeypatch, environ) as server:
        source = _source(server.media_root)
        url = "/derivatives/" + signed_path(source, parse_spec(SPEC))
        name, data = _check_burst(server, url)
    client = s3.client()
    stored = client.get_object(s3.bucket, f"media/{name}")
    try:
        assert stored.read() == data
    finally:
        stored.close()
        stored.release_conn()
    leases = list(client.list_objects(s3.bucket, prefix="media/.locks/", recursive=True))
    assert leases == [], "every lease was released"
