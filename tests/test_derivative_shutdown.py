"""Servers stop promptly and cleanly once the derivative process pool has started.

Each test starts a real server, makes one derivative miss (so the pool, its
forkserver and its workers exist), stops the server as its operator would,
and checks that every process of the family is gone within ``EXIT_SECONDS``,
with no traceback and no ``leaked semaphore`` warning of multiprocessing's
resource tracker in the output. On Python < 3.13, granian's worker (a
``multiprocessing`` child) used to wait for ever for the pool's workers.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

pytest.importorskip("PIL")

from fileresponse.derivatives.executor import ProcessPoolJobExecutor
from fileresponse.derivatives.processors.jobs import ImageJob
from fileresponse.derivatives.signing import signed_path
from fileresponse.derivatives.spec import parse_spec
from fileresponse.handlers import AsyncFileASGIHandler
from tests import images
from tests.example import example_environ
from tests.servers import SERVER_KINDS, LiveServer, MediaTree, ServerKind, free_port

pytestmark = pytest.mark.slow
live = pytest.mark.live

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Every process of a server (its workers, the pool's workers, the forkserver) is gone by then.
EXIT_SECONDS = 5.0
#: Time allowed to a stuck family before the test kills it.
GIVE_UP_SECONDS = 20.0
#: What a broken shutdown prints.
NOISE = ("Traceback", "leaked semaphore", "KeyboardInterrupt")


def _granian(module: str, *options: str) -> Callable[[int], list[str]]:
    """granian as deployed: no ``--workers-kill-timeout`` to hide a worker that never exits."""

    def command(port: int) -> list[str]:
        return [
            *(sys.executable, "-m", "granian", "--interface", "asgi"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
            *("--no-access-log", *options, module),
        ]

    return command


def _uvicorn(port: int) -> list[str]:
    """uvicorn as deployed: the lifespan protocol on (its default)."""
    return [
        *(sys.executable, "-m", "uvicorn", "tests.project.asgi_patched:application"),
        *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
    ]


PATCHED = "tests.project.asgi_patched:application"
STOCK = "tests.project.asgi_stock:application"

KINDS = {
    "granian": ServerKind("granian", "patched", _granian(PATCHED), serves_in_child=True),
    # Django's own handler refuses the lifespan protocol: the exit hooks end the pool.
    "granian-stock": ServerKind("granian-stock", "stock", _granian(STOCK), serves_in_child=True),
    "uvicorn": ServerKind("uvicorn", "patched", _uvicorn, serves_in_child=False),
    "gunicorn-uvicorn": SERVER_KINDS["gunicorn-uvicorn"],
    "gunicorn-sendfile": SERVER_KINDS["gunicorn-sendfile"],
    # No lifespan and the process ends by re-raising the signal, so no Python exit code
    # runs: the workers see their lifeline close; multiprocessing's resource tracker
    # then removes the pool's semaphores itself (and says so).
    "uvicorn-no-lifespan": SERVER_KINDS["uvicorn-patched"],
}
QUIET_KINDS = ["granian", "granian-stock", "uvicorn", "gunicorn-uvicorn", "gunicorn-sendfile"]


@pytest.fixture
def derivative_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MediaTree:
    media_root = tmp_path / "media"
    media_root.mkdir()
    (tmp_path / "outside").mkdir()
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.derivatives_site.settings")
    monkeypatch.setenv("FILERESPONSE_TEST_DERIVATIVES_ROOT", str(tmp_path / "derivatives"))
    monkeypatch.setenv("FILERESPONSE_TEST_LOCK_DIR", str(tmp_path / "locks"))
    return MediaTree(root=media_root, outside=tmp_path / "outside", files={})


def _started(kind: ServerKind, media: MediaTree, log: Path) -> LiveServer:
    server = LiveServer(kind, media, log)
    server.start()
    return server


def _family(pid: int) -> list[psutil.Process]:
    top = psutil.Process(pid)
    return [top, *top.children(recursive=True)]


def _pool_processes(family: list[psutil.Process]) -> list[psutil.Process]:
    """The forkserver and the pool's workers (forked by it: the same command line)."""
    found = []
    for process in family:
        try:
            if "multiprocessing.forkserver" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


def _miss(server: LiveServer, name: str = "shutdown.jpg", spec: str = "120x80") -> None:
    source = server.media_root / name
    source.write_bytes(images.jpeg((640, 480)))
    url = server.base_url + "/derivatives/" + signed_path(name, parse_spec(spec))
    response = httpx.get(url, timeout=60)
    assert response.status_code == 200, server.log_tail()


def _wait_gone(processes: list[psutil.Process], seconds: float) -> tuple[float, list[int]]:
    """Seconds until every process exited (polled every 20 ms), and the pids still alive."""
    started = time.monotonic()
    alive = list(processes)
    while alive and time.monotonic() - started < seconds:
        alive = [process for process in alive if _running(process)]
        time.sleep(0.02)
    return time.monotonic() - started, [process.pid for process in alive]


def _running(process: psutil.Process) -> bool:
    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _kill(processes: list[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def _stop_and_measure(
    server: LiveServer, send: Callable[[int], None]
) -> tuple[float, list[int], int]:
    """Stop the server by ``send(pid)``; (seconds to exit, pids left, pool processes seen)."""
    assert server.process is not None
    family = _family(server.process.pid)
    pool = _pool_processes(family)
    send(server.process.pid)
    elapsed, alive = _wait_gone(family, GIVE_UP_SECONDS)
    _kill([process for process in family if process.pid in alive])
    server.process.wait(timeout=10)
    return elapsed, alive, len(pool)


def _noise(output: str) -> list[str]:
    return [line for line in output.splitlines() if any(word in line for word in NOISE)]


# ---------------------------------------------------------------- the lifespan protocol


async def test_the_lifespan_shutdown_ends_the_pool(tmp_path: Path) -> None:
    """fileresponse's handler completes the lifespan; at its shutdown no pool worker is left."""
    source = tmp_path / "a.jpg"
    source.write_bytes(images.jpeg((200, 100)))
    pool = ProcessPoolJobExecutor(max_workers=1)
    job = ImageJob(parse_spec("20x20"), "png", 10**8, 10**8, path=str(source))
    await pool.run(job)
    workers = [psutil.Process(pid) for pid in pool.worker_pids]
    assert workers
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, str]:
        return next(incoming)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
    await AsyncFileASGIHandler()(scope, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    _, alive = psutil.wait_procs(workers, timeout=EXIT_SECONDS)
    assert alive == [], "the shutdown ended the pool's workers"
    await pool.run(job)  # used again: new workers
    pool.shutdown()


# ---------------------------------------------------------------- SIGTERM


@live
@pytest.mark.parametrize("kind_name", QUIET_KINDS)
def test_sigterm_after_a_miss_ends_every_process_quietly(
    kind_name: str, derivative_environ: MediaTree, tmp_path: Path
) -> None:
    server = _started(KINDS[kind_name], derivative_environ, tmp_path / "server.log")
    try:
        _miss(server)
        elapsed, alive, pool = _stop_and_measure(server, lambda pid: os.kill(pid, signal.SIGTERM))
    finally:
        server.stop()
    log = server.log_tail(100_000)
    print(f"{kind_name}: every process gone {elapsed:.2f} s after SIGTERM")
    assert pool >= 2, "the miss started a forkserver and a worker"
    assert alive == [], f"still running after {GIVE_UP_SECONDS} s (killed):\n{log[-3000:]}"
    assert elapsed < EXIT_SECONDS, log[-3000:]
    assert _noise(log) == [], log[-4000:]


@live
def test_sigterm_without_lifespan_ends_every_process(
    derivative_environ: MediaTree, tmp_path: Path
) -> None:
    """uvicorn ``--lifespan off``: the workers exit with their owner (their lifeline)."""
    server = _started(KINDS["uvicorn-no-lifespan"], derivative_environ, tmp_path / "server.log")
    try:
        _miss(server)
        elapsed, alive, pool = _stop_and_measure(server, lambda pid: os.kill(pid, signal.SIGTERM))
    finally:
        server.stop()
    log = server.log_tail(100_000)
    assert pool >= 2
    assert alive == [], log[-3000:]
    assert elapsed < EXIT_SECONDS, log[-3000:]
    assert "Traceback" not in log


# ---------------------------------------------------------------- workers replaced


def _old_worker_exits(server: LiveServer, replace: Callable[[LiveServer], None]) -> float:
    """Seconds for the worker that ran a miss, and its pool, to exit once it is replaced."""
    assert server.process is not None
    _miss(server)
    # The worker that ran the miss owns a pool; a respawn may have started its successor.
    owners = []
    for worker in psutil.Process(server.process.pid).children():
        with contextlib.suppress(psutil.NoSuchProcess):
            owners.append([worker, *worker.children(recursive=True)])
    owners = [family for family in owners if len(_pool_processes(family)) >= 2]
    assert len(owners) == 1, "one worker ran the miss and owns a pool"
    (family,) = owners
    replace(server)
    elapsed, alive = _wait_gone(family, GIVE_UP_SECONDS)
    _kill([process for process in family if process.pid in alive])
    assert alive == [], f"the old worker never exited:\n{server.log_tail()}"
    return elapsed


@live
def test_granian_respawn_by_rss_ends_the_old_worker(
    derivative_environ: MediaTree, tmp_path: Path
) -> None:
    """``--workers-max-rss`` respawns: the old worker (its pool too) exits; the new one works."""
    kind = ServerKind(
        "granian-max-rss",
        "patched",
        _granian(PATCHED, "--workers-max-rss", "1", "--rss-sample-interval", "3"),
        serves_in_child=True,
    )
    server = _started(kind, derivative_environ, tmp_path / "server.log")
    try:
        # granian respawns the worker at the next sample (every 3 s): just wait for it.
        elapsed = _old_worker_exits(server, lambda server: None)
        assert "Respawning worker-1" in server.log_tail(100_000)
        assert elapsed < 3 + EXIT_SECONDS
        _wait_for_one_worker(server)
        _miss(server, "after-respawn.jpg")
    finally:
        server.stop()
    assert _noise(server.log_tail(100_000)) == [], server.log_tail()


@live
def test_gunicorn_reload_ends_the_old_worker(derivative_environ: MediaTree, tmp_path: Path) -> None:
    """``SIGHUP``: gunicorn replaces its workers; the old one and its pool exit."""
    server = _started(KINDS["gunicorn-uvicorn"], derivative_environ, tmp_path / "server.log")
    try:
        elapsed = _old_worker_exits(server, lambda server: os.kill(_master(server), signal.SIGHUP))
        assert elapsed < EXIT_SECONDS
        _wait_for_one_worker(server)
        _miss(server, "after-reload.jpg")
    finally:
        server.stop()
    assert _noise(server.log_tail(100_000)) == [], server.log_tail()


def _master(server: LiveServer) -> int:
    assert server.process is not None
    return server.process.pid


def _wait_for_one_worker(server: LiveServer, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            server.pid  # noqa: B018 (raises until there is exactly one worker)
            return
        except Exception:
            time.sleep(0.05)
    raise AssertionError(f"no single worker again:\n{server.log_tail()}")


# ---------------------------------------------------------------- make demo


def _demo_command(port: int) -> str:
    """The command of ``make demo`` (``example/demo.py``), as make would run it."""
    try:
        printed = subprocess.run(
            # The virtualenv running the tests (the Django 5.2 leg has its own).
            [
                *("make", "-s", "-n", "demo", "HOST=127.0.0.1", f"PORT={port}"),
                f"DEMO_VENV={sys.prefix}",
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"cannot read the demo's command from the Makefile: {error}")
    lines = printed.replace("\\\n", " ").splitlines()
    server = [line for line in lines if line.startswith("exec ") and "example/demo.py" in line]
    assert len(server) == 1, printed
    return server[0]


@live
def test_make_demo_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    """``make demo`` (gunicorn, two uvicorn workers) after a miss; Ctrl-C: no noise, exit 0."""
    port = free_port()
    command = _demo_command(port)
    env = example_environ(
        tmp_path,
        PYTHONUNBUFFERED="1",
        # This checkout, which the editable install of the virtualenv names anyway.
        PYTHONPATH=os.pathsep.join(filter(None, (str(REPO_ROOT), os.environ.get("PYTHONPATH")))),
    )
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as log:
        demo = subprocess.Popen(
            ["bash", "-c", command],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal gives it
        )
    try:
        base = f"http://127.0.0.1:{port}"
        page = _get_when_up(base + "/", demo, log_path)
        thumbnails = re.findall(r'<img class="thumb" src="([^"]+)"', page.text)
        assert thumbnails, page.text[:2000]
        for thumbnail in thumbnails[:4]:  # misses, spread over both workers
            response = httpx.get(
                base + thumbnail.replace("&amp;", "&"), headers={"Accept": "image/webp"}, timeout=60
            )
            assert response.status_code == 200, log_path.read_text()
        family = _family(demo.pid)
        assert _pool_processes(family), "the misses started the process pool"
        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
        elapsed, alive = _wait_gone(family, GIVE_UP_SECONDS)
        _kill([process for process in family if process.pid in alive])
        returncode = demo.wait(timeout=10)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(timeout=10)
    output = log_path.read_text()
    print(f"make demo: every process gone {elapsed:.2f} s after Ctrl-C")
    assert alive == [], output[-3000:]
    assert elapsed < EXIT_SECONDS, output[-3000:]
    assert returncode == 0, output[-3000:]
    assert _noise(output) == [], output[-6000:]


def _get_when_up(url: str, process: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the demo exited with {process.returncode}:\n{log.read_text()}")
        try:
            response = httpx.get(url, timeout=10)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        assert response.status_code == 200, response.text[:2000]
        return response
    raise AssertionError(f"the demo did not answer:\n{log.read_text()}")
