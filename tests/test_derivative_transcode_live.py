"""Transcodes through real servers: streamed while ffmpeg runs, one run for many clients.

Each server kind (uvicorn, gunicorn with uvicorn workers, granian) serves
tests.derivatives_site; the source is a 30 s 640x360 test pattern with a tone
(tests/media.py). The transcode is checked by probing what the client got.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("imageio_ffmpeg")
psutil = pytest.importorskip("psutil")

from fileresponse.derivatives.keys import MANIFEST_NAME  # noqa: E402
from fileresponse.derivatives.signing import signed_path  # noqa: E402
from fileresponse.derivatives.spec import parse_spec  # noqa: E402
from tests import media as test_media  # noqa: E402
from tests import rawhttp  # noqa: E402
from tests.servers import SERVER_KINDS, LiveServer, MediaTree  # noqa: E402
from tests.test_derivative_transcode import SECONDS, examine  # noqa: E402

pytestmark = [pytest.mark.live, pytest.mark.slow]

SERVERS = ["uvicorn-patched", "gunicorn-uvicorn", "granian"]
CLIENTS = 20
#: Decode one frame and write nothing (ffmpeg's output arguments).
NULL_FRAME = ("-frames:v", "1", "-f", "null", "-")


@dataclass
class Site:
    server: LiveServer
    media: Path
    derivatives: Path

    def path(self, source: str, spec: str) -> str:
        return "/derivatives/" + signed_path(source, parse_spec(spec))

    def committed(self) -> list[Path]:
        return [
            path
            for path in self.derivatives.rglob("*")
            if path.is_file()
            and ".locks" not in path.parts
            and path.name != MANIFEST_NAME
            and not path.name.startswith(".")
        ]

    def temporaries(self) -> list[Path]:
        return list(self.derivatives.rglob(".*.tmp"))

    def generated(self, slug: str) -> int:
        log = self.server.log_tail(1_000_000)
        return sum(1 for line in log.splitlines() if "generated " in line and slug in line)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("transcode-live-media")
    test_media.video(root / "clip.mp4", seconds=SECONDS, size="640x360", bitrate="300k")
    test_media.video(root / "long.mp4", seconds=120, size="320x240", bitrate="100k")
    (root / "broken.mp4").write_bytes(test_media.corrupt())
    return root


@contextmanager
def serving(kind: str, sources: Path, root: Path, **settings: object) -> Iterator[Site]:
    outside = root / "outside"
    outside.mkdir()
    table = {"DERIVATIVES_NEGATIVE_TTL": None, **settings}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_SETTINGS_MODULE", "tests.derivatives_site.settings")
        patch.setenv("FILERESPONSE_TEST_DERIVATIVES_ROOT", str(root / "derivatives"))
        patch.setenv("FILERESPONSE_TEST_LOCK_DIR", str(root / "locks"))
        patch.setenv("FILERESPONSE_TEST_SETTINGS", json.dumps(table))
        server = LiveServer(
            SERVER_KINDS[kind], MediaTree(root=sources, outside=outside, files={}), root / "log"
        )
        server.start()
        try:
            yield Site(server, sources, root / "derivatives")
        finally:
            server.stop()


@pytest.fixture(scope="module", params=SERVERS)
def site(
    request: pytest.FixtureRequest, sources: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    with serving(request.param, sources, tmp_path_factory.mktemp(request.param)) as running:
        yield running


@dataclass
class Answer:
    head: str
    wire_body: bytes
    first_byte: float
    total: float
    #: Seconds to the first fragment (``moof``): the first playable bytes.
    first_fragment: float = 0.0

    @property
    def complete(self) -> bool:
        return self.wire_body.endswith(b"0\r\n\r\n") or "Content-Length" in self.head

    def parsed(self) -> rawhttp.RawResponse:
        return rawhttp.parse_response(
            self.head.encode("latin-1") + b"\r\n\r\n" + self.wire_body, "GET"
        )


def fetch(site: Site, path: str) -> Answer:
    """GET ``path`` over a raw socket: seconds to the first body byte, fragment and close."""
    host, port = site.server.host, site.server.port
    started = time.monotonic()
    raw = bytearray()
    first_byte = first_fragment = 0.0
    with socket.create_connection((host, port), timeout=60) as sock:
        sock.sendall(rawhttp.build_request("GET", path, f"{host}:{port}"))
        while chunk := sock.recv(1 << 16):
            raw += chunk
            head_end = raw.find(b"\r\n\r\n")
            if not first_byte and head_end >= 0 and len(raw) > head_end + 4:
                first_byte = time.monotonic() - started
            if not first_fragment and raw.find(b"moof", max(0, len(raw) - len(chunk) - 4)) >= 0:
                first_fragment = time.monotonic() - started
    head, _, body = bytes(raw).partition(b"\r\n\r\n")
    total = time.monotonic() - started
    return Answer(head.decode("latin-1"), body, first_byte, total, first_fragment)


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"still false after {seconds}s")


def test_the_first_bytes_arrive_long_before_the_run_ends(site: Site, tmp_path: Path) -> None:
    answer = fetch(site, site.path("clip.mp4", "mp4 360p"))
    response = answer.parsed()
    assert response.status == 200, answer.head
    assert response.header("Transfer-Encoding") == "chunked"
    assert response.header("Cache-Control") == "no-store"
    assert response.header("Content-Type") == "video/mp4"
    print(
        f"\n{site.server.name}: mp4 360p of {SECONDS:g}s: first byte {answer.first_byte:.3f}s, "
        f"first fragment {answer.first_fragment:.3f}s, whole body {answer.total:.3f}s "
        f"({answer.total / answer.first_byte:.0f}x)"
    )
    assert answer.first_byte < answer.total / 4
    assert 0 < answer.first_fragment < answer.total / 2
    (tmp_path / "got.mp4").write_bytes(response.body)
    probed = examine(tmp_path / "got.mp4")
    assert (probed.info.video_codec, probed.info.height, probed.info.audio_codec) == (
        "h264",
        360,
        "aac",
    )
    assert probed.decoded == pytest.approx(SECONDS, abs=0.5)
    assert [path.read_bytes() for path in site.committed()] == [response.body]
    assert site.generated("/360p.mp4") == 1


def test_concurrent_requests_follow_one_run_then_the_cache_serves_ranges(site: Site) -> None:
    spec = "mp4 360p crf=28"
    answers: list[Answer] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(index: int) -> None:
        start.wait()
        time.sleep(index * 0.02)  # later clients join a run under way
        answer = fetch(site, site.path("clip.mp4", spec))
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == CLIENTS
    assert all(answer.complete for answer in answers)
    bodies = {answer.parsed().body for answer in answers}
    assert len(bodies) == 1
    assert site.generated("/360p_crf-28.mp4") == 1
    (body,) = bodies

    ranged = rawhttp.request(
        site.server.host,
        site.server.port,
        "GET",
        site.path("clip.mp4", spec),
        {"Range": "bytes=1000-1999"},
    )
    assert ranged.status == 206
    assert ranged.body == body[1000:2000]
    url = site.server.base_url + site.path("clip.mp4", spec)
    seek = subprocess.run(
        [test_media.ffmpeg(), "-hide_banner", "-nostdin", "-ss", "10", "-i", url, *NULL_FRAME],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert seek.returncode == 0, seek.stderr[-2000:]
    assert "frame=    1" in seek.stderr or "frame=1" in seek.stderr, seek.stderr[-2000:]


def test_corrupt_media_is_4xx_and_never_cached(site: Site) -> None:
    before = site.committed()
    answer = fetch(site, site.path("broken.mp4", "mp4 360p"))
    assert answer.head.startswith("HTTP/1.1 422"), answer.head
    assert site.committed() == before
    assert not site.temporaries()


@pytest.mark.parametrize("kind", SERVERS)
def test_a_timeout_kills_ffmpeg_and_caches_nothing(
    kind: str, sources: Path, tmp_path: Path
) -> None:
    with serving(kind, sources, tmp_path, DERIVATIVES_TIMEOUT=1) as timing_out:
        seen: set[int] = set()
        done = threading.Event()

        def watch() -> None:
            server = psutil.Process(timing_out.server.pid)
            while not done.is_set():
                for child in server.children(recursive=True):
                    try:
                        if "ffmpeg" in child.name() or "ffmpeg" in " ".join(child.cmdline()):
                            seen.add(child.pid)
                    except psutil.NoSuchProcess:
                        continue
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            answer = fetch(timing_out, timing_out.path("long.mp4", "mp4 360p"))
        finally:
            done.set()
            watcher.join()
        # Cut after its first bytes; or a 503 if a loaded machine took the second to start.
        if answer.head.startswith("HTTP/1.1 200"):
            assert not answer.complete, answer.head
        else:
            assert answer.head.startswith("HTTP/1.1 503"), answer.head
        assert answer.total < 10
        assert seen, "ffmpeg was seen running"
        wait_for(lambda: not [pid for pid in seen if alive(pid)], 5)
        assert timing_out.committed() == []
        assert not timing_out.temporaries()
        assert "took longer than 1s" in timing_out.server.log_tail(100_000)


def alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
