"""Following a streamed run across processes, cut responses on every server, run caps by kind.

The live tests reuse the command script of tests/test_derivative_streaming.py
(it copies its source in pieces with pauses and logs one line per run) on
gunicorn with several uvicorn workers, uvicorn and granian.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

psutil = pytest.importorskip("psutil")

from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.files.storage import default_storage  # noqa: E402
from django.test import AsyncClient  # noqa: E402
from django.urls import include, path  # noqa: E402

from fileresponse.checks import check_settings  # noqa: E402
from fileresponse.conf import get_config  # noqa: E402
from fileresponse.derivatives import executor as executor_module  # noqa: E402
from fileresponse.derivatives import slots  # noqa: E402
from fileresponse.derivatives.exceptions import ProcessingUnavailable  # noqa: E402
from fileresponse.derivatives.following import (  # noqa: E402
    LIVE_SUFFIX,
    create_live,
    live_path,
    open_live,
)
from fileresponse.derivatives.pipeline import (  # noqa: E402
    Streaming,
    clear_negative_cache,
    obtain_derivative,
    obtain_or_stream,
)
from fileresponse.derivatives.signing import signed_path  # noqa: E402
from fileresponse.derivatives.spec import parse_spec  # noqa: E402
from fileresponse.exceptions import StreamCut  # noqa: E402
from tests import images  # noqa: E402
from tests.servers import SERVER_KINDS, LiveServer, MediaTree, ServerKind  # noqa: E402
from tests.test_derivative_streaming import (  # noqa: E402
    MODES,
    PAUSE,
    PIECES,
    SCRIPT,
    Answer,
    Site,
    fetch,
    target,
)

urlpatterns = [path("derivatives/", include("fileresponse.derivatives.urls"))]

WORKERS = 3


def _gunicorn_workers(port: int) -> list[str]:
    return [
        *(sys.executable, "-m", "gunicorn", "tests.project.asgi_patched:application"),
        *("--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS)),
        *("--worker-class", "uvicorn_worker.UvicornWorker"),
        *("--graceful-timeout", "2", "--timeout", "60", "--log-level", "warning"),
    ]


#: Ready once one worker answers; the test waits for the others (see ``workers``).
GUNICORN_WORKERS = ServerKind(
    "gunicorn-uvicorn-workers", "patched", _gunicorn_workers, serves_in_child=False
)


@contextmanager
def serving(root: Path, kind: ServerKind, **settings: object) -> Iterator[Site]:
    """``kind`` on tests.derivatives_site with the commands of the streaming tests."""
    media, outside, runs = root / "media", root / "outside", root / "runs"
    for directory in (media, outside, runs):
        directory.mkdir()
    script = root / "stream_script.py"
    script.write_text(SCRIPT)
    commands = {
        name: {
            "argv": [sys.executable, str(script), mode, str(runs / name), "{input}"],
            "formats": {"png": "image/png"},
            "timeout": 30,
        }
        for name, mode in MODES.items()
    }
    table = {"DERIVATIVES_COMMANDS": commands, "DERIVATIVES_NEGATIVE_TTL": None, **settings}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_SETTINGS_MODULE", "tests.derivatives_site.settings")
        patch.setenv("FILERESPONSE_TEST_DERIVATIVES_ROOT", str(root / "derivatives"))
        patch.setenv("FILERESPONSE_TEST_LOCK_DIR", str(root / "locks"))
        patch.setenv("FILERESPONSE_TEST_SETTINGS", json.dumps(table))
        server = LiveServer(kind, MediaTree(root=media, outside=outside, files={}), root / "log")
        server.start()
        try:
            yield Site(server, media, root / "derivatives", runs)
        finally:
            server.stop()


def workers(site: Site) -> list[int]:
    assert site.server.process is not None
    return [child.pid for child in psutil.Process(site.server.process.pid).children()]


def holding_live_file(pids: list[int]) -> set[int]:
    """The processes among ``pids`` with a live file open."""
    holding = set()
    for pid in pids:
        try:
            links = os.listdir(f"/proc/{pid}/fd")
        except FileNotFoundError:
            continue
        for link in links:
            try:
                if os.readlink(f"/proc/{pid}/fd/{link}").endswith(LIVE_SUFFIX):
                    holding.add(pid)
            except FileNotFoundError:
                continue
    return holding


# ---------------------------------------------------------------- across processes, live


@pytest.mark.live
def test_requests_on_other_workers_follow_the_run_live(tmp_path: Path) -> None:
    with serving(tmp_path, GUNICORN_WORKERS) as site:
        deadline = time.monotonic() + 30
        while len(workers(site)) < WORKERS:
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.05)
        time.sleep(2)  # each worker loads the project before it accepts
        pids = workers(site)
        data = site.source("across.bin")
        answers: list[tuple[float, Answer]] = []
        holders: set[int] = set()
        lock = threading.Lock()
        done = threading.Event()
        start = threading.Barrier(9)

        def client(index: int) -> None:
            start.wait()
            time.sleep(index * 0.1)  # spread over the first half of the run
            began = time.monotonic()
            answer = fetch(site, target("across.bin", "concurrent"))
            with lock:
                answers.append((began, answer))

        def watch() -> None:
            while not done.is_set():
                holders.update(holding_live_file(pids))
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        threads = [threading.Thread(target=client, args=(index,)) for index in range(9)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        done.set()
        watcher.join(5)

        assert len(answers) == 9
        assert all(answer.complete for _, answer in answers)
        assert {answer.parsed().body for _, answer in answers} == {data}
        assert len(site.runs_of("concurrent")) == 1
        first_bytes = [began + answer.first_byte for began, answer in answers]
        ends = [began + answer.total for began, answer in answers]
        print(
            f"\n{len(holders)} of {len(pids)} workers had the live file open; "
            f"last first byte {max(first_bytes) - min(ends):+.3f}s from the first end; "
            f"run {PIECES * PAUSE:.1f}s"
        )
        assert len(holders) >= 2, "no request followed the run from another worker"
        assert max(first_bytes) < min(ends), "a request waited for the end of the run"
        assert not site.temporaries()
        log = site.server.log_tail(100_000)
    assert "Traceback" not in log


@pytest.mark.live
def test_a_failed_run_cuts_the_followers_on_other_workers(tmp_path: Path) -> None:
    """The first run fails midway: every response is cut; a retry later makes it."""
    with serving(tmp_path, GUNICORN_WORKERS) as site:
        deadline = time.monotonic() + 30
        while len(workers(site)) < WORKERS:
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.05)
        time.sleep(2)
        data = site.source("fails.bin")
        answers: list[Answer] = []
        lock = threading.Lock()
        start = threading.Barrier(6)

        def client(index: int) -> None:
            start.wait()
            time.sleep(index * 0.05)
            answer = fetch(site, target("fails.bin", "failonce"))
            with lock:
                answers.append(answer)

        threads = [threading.Thread(target=client, args=(index,)) for index in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(answers) == 6
        assert all(answer.head.startswith("HTTP/1.1 200") for answer in answers)
        assert not any(answer.complete for answer in answers)
        again = fetch(site, target("fails.bin", "failonce"))
        assert again.complete
        assert again.parsed().body == data
        log = site.server.log_tail(100_000)
    assert log.count("streamed response cut") == 6, log
    assert "Traceback" not in log


# ---------------------------------------------------------------- a cut, on each server


@pytest.mark.live
@pytest.mark.parametrize("server", ["uvicorn-patched", "gunicorn-uvicorn", "granian"])
def test_a_cut_response_closes_the_connection_without_a_traceback(
    tmp_path: Path, server: str
) -> None:
    with serving(tmp_path, SERVER_KINDS[server]) as site:
        site.source("cut.bin")
        answer = fetch(site, target("cut.bin", "failonce"))
        time.sleep(0.3)  # the log lines of the cut
        log = site.server.log_tail(100_000)
    response_head = answer.head.lower()
    assert answer.head.startswith("HTTP/1.1 200"), answer.head
    assert "transfer-encoding: chunked" in response_head
    assert answer.wire_body, "the first pieces were sent"
    assert not answer.complete, "no last chunk after a cut"
    assert answer.total < PIECES * PAUSE + 5, "the server closed the connection"
    assert "streamed response cut" in log
    assert "exited with status 3" in log
    assert "Traceback" not in log
    assert "Exception in ASGI application" not in log
    print(f"\n{server}: {[line for line in log.splitlines() if 'cut' in line or 'ASGI' in line]}")


# ---------------------------------------------------------------- the live file, in process


async def test_a_live_file_is_followed_to_its_commit(tmp_path: Path) -> None:
    root = str(tmp_path)
    name = "v/a/b.png"
    assert await open_live(root, name, 5, 1024) is None, "no live file yet"
    descriptor, live = create_live(root, name)
    assert live == live_path(root, name)
    assert live.endswith("/.b.png" + LIVE_SUFFIX)
    assert await open_live(root, name, 5, 1024) is None, "no byte yet"
    os.write(descriptor, b"x" * 3000)
    follower = await open_live(root, name, 5, 1024)
    assert follower is not None
    received = [await anext(follower) for _ in range(3)]
    assert [len(chunk) for chunk in received] == [1024, 1024, 952]

    async def commit_later() -> None:
        await asyncio.sleep(0.1)
        os.write(descriptor, b"y" * 500)
        os.replace(live, tmp_path / name)
        os.close(descriptor)

    committing = asyncio.ensure_future(commit_later())
    received += [chunk async for chunk in follower]
    await committing
    assert b"".join(received) == b"x" * 3000 + b"y" * 500


async def test_a_live_file_gone_without_a_commit_is_a_cut(tmp_path: Path) -> None:
    root = str(tmp_path)
    descriptor, live = create_live(root, "c.png")
    os.write(descriptor, b"z" * 10)
    follower = await open_live(root, "c.png", 5, 1024)
    assert follower is not None
    assert await anext(follower) == b"z" * 10
    os.unlink(live)
    os.close(descriptor)
    with pytest.raises(StreamCut, match=r"c\.png: the run of another process failed"):
        await anext(follower)


async def test_a_live_file_that_stops_growing_is_cut_after_the_timeout(tmp_path: Path) -> None:
    root = str(tmp_path)
    descriptor, _ = create_live(root, "d.png")
    os.write(descriptor, b"z")
    follower = await open_live(root, "d.png", 0.3, 1024)
    assert follower is not None
    assert await anext(follower) == b"z"
    for _ in range(3):  # 0.6 s in all, but never 0.3 s without a byte
        await asyncio.sleep(0.2)
        os.write(descriptor, b"z")
        assert await anext(follower) == b"z"
    started = time.monotonic()
    with pytest.raises(StreamCut, match=r"wrote nothing for 0\.3s"):
        await anext(follower)
    assert 0.25 < time.monotonic() - started < 2
    os.close(descriptor)


def test_a_leftover_live_file_is_replaced_by_the_lock_holder(tmp_path: Path) -> None:
    first, live = create_live(str(tmp_path), "e.png")
    os.write(first, b"stale")
    second, again = create_live(str(tmp_path), "e.png")
    assert again == live
    assert os.fstat(second).st_ino != os.fstat(first).st_ino
    assert Path(live).read_bytes() == b""
    os.close(first)
    os.close(second)


# ---------------------------------------------------------------- runs capped per kind


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"video": 0}, "DERIVATIVES_MAX_RUNS['video'] must be a positive int, not 0"),
        ({"video": True}, "must be a positive int, not True"),
        ({"audio": "2"}, "must be a positive int, not '2'"),
        ({"Video": 2}, "a kind is 1..40 of a-z"),
        ([2], "DERIVATIVES_MAX_RUNS must be Mapping, not list"),
    ],
)
def test_a_bad_run_cap_fails_at_start_up(settings: Any, table: object, problem: str) -> None:
    settings.FILERESPONSE = {"DERIVATIVES_MAX_RUNS": table}
    with pytest.raises(ImproperlyConfigured, match=re.escape(problem)):
        get_config()
    (message,) = check_settings()
    assert message.id == "fileresponse.E002"
    assert problem in message.msg


def test_the_run_caps_default_and_replace(settings: Any) -> None:
    assert dict(get_config().DERIVATIVES_MAX_RUNS) == {"video": 2, "audio": 4, "command": 4}
    settings.FILERESPONSE = {"DERIVATIVES_MAX_RUNS": {"image": 3}}
    assert dict(get_config().DERIVATIVES_MAX_RUNS) == {"image": 3}


@pytest.fixture
def capped(settings: Any, tmp_path: Path) -> Iterator[Path]:
    media = tmp_path / "media"
    media.mkdir()
    (media / "a.jpg").write_bytes(images.jpeg((300, 200)))
    (media / "b.bin").write_bytes(b"x")
    (media / "c.bin").write_bytes(b"x")
    slow = "import sys, time; sys.stdout.write('x'); sys.stdout.flush(); time.sleep(30)"
    settings.ROOT_URLCONF = __name__
    settings.MEDIA_ROOT = str(media)
    settings.STORAGES = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    settings.FILERESPONSE = {
        "DERIVATIVES_ROOT": str(tmp_path / "derivatives"),
        "DERIVATIVES_EXECUTOR": "thread",
        "DERIVATIVES_STREAM_ABANDON": True,
        "DERIVATIVES_NEGATIVE_TTL": None,
        "DERIVATIVES_MAX_RUNS": {"image": 1, "command": 1},
        "DERIVATIVES_COMMANDS": {
            "slow": {"argv": [sys.executable, "-c", slow], "formats": {"png": "x/y"}},
        },
    }
    clear_negative_cache()
    yield media
    executor_module.reset_executor()
    clear_negative_cache()


def url(source_name: str, spec: str) -> str:
    return "/derivatives/" + signed_path(source_name, parse_spec(spec))


async def test_one_more_pool_run_of_a_capped_kind_is_a_503(capped: Path) -> None:
    client = AsyncClient()
    with slots.take_slot("image", get_config()):  # the one image run of this process
        busy = await client.get(url("a.jpg", "100x100 png"))
        assert busy.status_code == 503
        assert busy["Retry-After"] == "2"
        with pytest.raises(ProcessingUnavailable, match="too many image derivatives"):
            await obtain_derivative(default_storage, "default", "a.jpg", parse_spec("50x50 png"))
    assert slots.running("image") == 0
    served = await client.get(url("a.jpg", "100x100 png"))
    assert served.status_code == 200
    assert slots.running("image") == 0, "the slot is given back after the run"


async def test_one_more_streamed_run_of_a_capped_kind_is_a_503(capped: Path) -> None:
    streaming = await obtain_or_stream(default_storage, "default", "b.bin", parse_spec("run=slow"))
    assert isinstance(streaming, Streaming)
    assert await anext(streaming.body) == b"x"
    assert slots.running("command") == 1
    busy = await AsyncClient().get(url("c.bin", "run=slow"))
    assert busy.status_code == 503
    assert busy["Retry-After"] == "2"
    # Another kind is not held back by the command cap.
    assert (await AsyncClient().get(url("a.jpg", "100x100 png"))).status_code == 200
    await streaming.body.aclose()  # type: ignore[attr-defined]
    started = time.monotonic()
    while slots.running("command"):
        assert time.monotonic() - started < 5, "the abandoned run kept its slot"
        await asyncio.sleep(0.02)
