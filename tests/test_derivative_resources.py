"""Memory, temporary files and disk space of derivative misses, through a real server.

- Failed derivatives of large MinIO sources leave nothing behind in the
  server's memory (the negative cache keeps no error with its traceback).
- Concurrent misses on large MinIO sources take bounded memory: a source is
  streamed to a temporary file, the job carries its path, the file is gone
  after the job.
- A full disk while a derivative is written is a ``507`` with its reason;
  nothing partial is left or served, and once there is space again the next
  request makes it.

The servers are uvicorn (one process: its RSS is the server's) with the
lifespan protocol, running ``tests/derivatives_site`` plus the settings of
each test, from a module written in the test's directory.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import io
import os
import pickle
import random
import secrets
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import httpx
import psutil
import pytest

pytest.importorskip("PIL")

from django.core.files.base import File

from fileresponse.derivatives import exceptions
from fileresponse.derivatives import executor as executor_module
from fileresponse.derivatives.exceptions import NotAnImage, ProcessingUnavailable
from fileresponse.derivatives.pipeline import (
    _NegativeCache,
    clear_negative_cache,
    obtain_derivative,
)
from fileresponse.derivatives.processors.jobs import ImageJob, ImageResult
from fileresponse.derivatives.signing import signed_path
from fileresponse.derivatives.singleflight import MachineLock, SingleFlight, lock_key
from fileresponse.derivatives.spec import parse_spec
from tests import images
from tests.project.storages import OpaqueStorage
from tests.s3server import S3Target
from tests.servers import LiveServer, MediaTree, ServerKind

MIB = 1024 * 1024
SOURCE_BYTES = 20 * MIB
#: Sequential failed misses (each of a distinct 20 MiB non-image).
FAILURES = 12
#: Growth of the server's RSS allowed over those failures (it was ~21 MiB per failure).
FAILURES_GROWTH = 60 * MIB
#: Concurrent misses (each of a distinct 20 MiB source, half of them images).
CONCURRENT = 16
#: Peak growth of the server's RSS allowed during them (it was ~480 MiB).
CONCURRENT_GROWTH = 120 * MIB


# ---------------------------------------------------------------- in process


def test_the_negative_cache_keeps_no_traceback() -> None:
    """What a failed run had read (in its frames) is freed once the failure is remembered."""

    class Payload:
        pass

    def run(payload: Payload) -> None:
        raise NotAnImage("source is not an image of a supported format")

    cache = _NegativeCache()
    payload = Payload()
    alive = weakref.ref(payload)
    try:
        run(payload)
    except NotAnImage as error:
        cache.remember("name", error, ttl=30)
    del payload
    gc.collect()
    assert alive() is None, "the remembered failure keeps the run's frames"
    with pytest.raises(NotAnImage, match=r"^source is not an image of a supported format$"):
        cache.check("name")


async def test_a_failed_flight_keeps_nothing(tmp_path: Path) -> None:
    """Single-flight forgets a failed run, its error and its frames, once it is awaited."""

    class Payload:
        pass

    flight = SingleFlight(MachineLock(str(tmp_path / "locks")))
    payload = Payload()
    alive = weakref.ref(payload)

    async def produce(payload: Payload = payload) -> None:
        raise NotAnImage("not an image")

    async def is_done() -> bool:
        return False

    with pytest.raises(NotAnImage):
        await flight.run(lock_key("name"), is_done, produce)
    del payload, produce
    for _ in range(3):  # the loop drops its handles of the finished futures
        await asyncio.sleep(0)
    gc.collect()
    assert alive() is None
    assert all(not flights for flights in flight._flights.values())


# ---------------------------------------------------------------- remote sources, in process


class ScriptedExecutor:
    """``DERIVATIVES_EXECUTOR`` of these tests: each run does what the test scripted."""

    jobs: ClassVar[list[ImageJob]] = []
    behaviour: ClassVar[Callable[[ImageJob], Awaitable[ImageResult]] | None] = None

    async def run(self, job: ImageJob) -> ImageResult:
        type(self).jobs.append(job)
        behaviour = type(self).behaviour
        assert behaviour is not None
        return await behaviour(job)

    def shutdown(self) -> None:
        pass


class SlowStorage(OpaqueStorage):
    """A Storage on disk that fileresponse does not know, reading 20 ms per call."""

    def _open(self, name: str, mode: str = "rb") -> File[Any]:
        return File(_SlowReader(open(self._files.path(name), "rb", buffering=0)), name)


class _SlowReader(io.BufferedReader):
    def read(self, size: int | None = -1) -> bytes:
        time.sleep(0.02)
        return super().read(size)


@pytest.fixture
def remote(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Sources in a Storage with no local path; the executor scripted; yields the temp dir."""
    settings.FILERESPONSE = {
        "DERIVATIVES_ROOT": str(tmp_path / "derivatives"),
        "DERIVATIVES_EXECUTOR": f"{__name__}.ScriptedExecutor",
        "DERIVATIVES_LOCK_DIR": str(tmp_path / "locks"),
    }
    (tmp_path / "remote").mkdir()
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    ScriptedExecutor.jobs = []
    clear_negative_cache()
    yield temporary
    ScriptedExecutor.behaviour = None
    executor_module.reset_executor()
    clear_negative_cache()


def _remote_source(tmp_path: Path, name: str, size: int) -> bytes:
    data = images.jpeg((320, 240))
    data += random.Random(size).randbytes(max(0, size - len(data)))
    (tmp_path / "remote" / name).write_bytes(data)
    return data


async def _obtain(storage: OpaqueStorage, name: str) -> None:
    obtained = await obtain_derivative(storage, "remote", name, parse_spec("100x100"), output="png")
    obtained.stored.source.close()


def _files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.rglob("*") if path.is_file())


async def test_a_large_remote_source_reaches_the_worker_as_a_file(
    remote: Path, tmp_path: Path
) -> None:
    data = _remote_source(tmp_path, "large.jpg", 3 * MIB)
    seen: dict[str, Any] = {}

    async def process(job: ImageJob) -> ImageResult:
        assert job.path is not None
        seen.update(
            data=job.data,
            directory=os.path.dirname(job.path),
            content=await asyncio.to_thread(Path(job.path).read_bytes),
            pickled=len(pickle.dumps(job)),
        )
        from fileresponse.derivatives.processors.image import process_image

        return await asyncio.to_thread(process_image, job)

    ScriptedExecutor.behaviour = process
    await _obtain(OpaqueStorage(location=str(tmp_path / "remote")), "large.jpg")
    assert seen["data"] is None
    assert seen["directory"] == str(remote)
    assert seen["content"] == data, "the bytes of the source, all of them"
    assert seen["pickled"] < 4096, "a small job: the path, not the bytes"
    assert _files(remote) == [], "the copy is deleted after the job"


async def test_a_small_remote_source_reaches_the_worker_in_the_job(
    remote: Path, tmp_path: Path
) -> None:
    data = _remote_source(tmp_path, "small.jpg", 100 * 1024)

    async def process(job: ImageJob) -> ImageResult:
        assert job.path is None
        assert job.data == data
        assert _files(remote) == [], "no temporary file under the memory threshold"
        from fileresponse.derivatives.processors.image import process_image

        return await asyncio.to_thread(process_image, job)

    ScriptedExecutor.behaviour = process
    await _obtain(OpaqueStorage(location=str(tmp_path / "remote")), "small.jpg")


async def _fails(job: ImageJob) -> ImageResult:
    raise NotAnImage("source is not an image of a supported format")


async def _times_out(job: ImageJob) -> ImageResult:
    await asyncio.sleep(0.05)
    raise ProcessingUnavailable("processing took longer than 0.05s")


@pytest.mark.parametrize(
    ("behaviour", "error"), [(_fails, NotAnImage), (_times_out, ProcessingUnavailable)]
)
async def test_the_copy_is_deleted_when_the_job_fails(
    remote: Path,
    tmp_path: Path,
    behaviour: Callable[[ImageJob], Awaitable[ImageResult]],
    error: type[Exception],
) -> None:
    _remote_source(tmp_path, "large.jpg", 3 * MIB)
    ScriptedExecutor.behaviour = behaviour
    with pytest.raises(error):
        await _obtain(OpaqueStorage(location=str(tmp_path / "remote")), "large.jpg")
    assert len(ScriptedExecutor.jobs) == 1
    assert _files(remote) == []


async def test_the_copy_is_deleted_when_the_run_is_cancelled(remote: Path, tmp_path: Path) -> None:
    """The loop stops (server shutdown) while the job runs: every task cancelled."""
    _remote_source(tmp_path, "large.jpg", 3 * MIB)
    running = asyncio.Event()

    async def hangs(job: ImageJob) -> ImageResult:
        running.set()
        await asyncio.Event().wait()
        raise AssertionError("not reached")

    ScriptedExecutor.behaviour = hangs
    request = asyncio.ensure_future(
        _obtain(OpaqueStorage(location=str(tmp_path / "remote")), "large.jpg")
    )
    await asyncio.wait_for(running.wait(), 10)
    assert len(_files(remote)) == 1
    others = asyncio.all_tasks() - {asyncio.current_task()}
    assert request in others
    for task in others:  # the request and the single-flight run it waits for
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    assert _files(remote) == []


async def test_the_copy_is_deleted_when_cancelled_while_copying(
    remote: Path, tmp_path: Path
) -> None:
    _remote_source(tmp_path, "large.jpg", 4 * MIB)
    ScriptedExecutor.behaviour = _fails
    storage = SlowStorage(location=str(tmp_path / "remote"))
    request = asyncio.ensure_future(_obtain(storage, "large.jpg"))
    await _until(lambda: bool(_files(remote)), 0.005)
    assert _files(remote), "the copy rolled over to a file"
    for task in asyncio.all_tasks() - {asyncio.current_task()}:
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await _until(lambda: not _files(remote), 0.01)  # the copying thread stops, and deletes
    assert _files(remote) == []
    assert ScriptedExecutor.jobs == [], "no job for a cancelled copy"


async def _until(condition: Callable[[], bool], pause: float, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / pause)):
        if condition():
            return
        await asyncio.sleep(pause)


# ---------------------------------------------------------------- servers


def _uvicorn(port: int) -> list[str]:
    return [
        *(sys.executable, "-m", "uvicorn", "tests.project.asgi_patched:application"),
        *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
    ]


UVICORN = ServerKind("uvicorn", "patched", _uvicorn, serves_in_child=False)


@contextmanager
def derivative_server(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    settings: str,
    environ: dict[str, str] | None = None,
) -> Iterator[LiveServer]:
    """uvicorn on ``tests/derivatives_site`` with ``settings`` (Python) appended."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "resource_settings.py").write_text(
        "from tests.derivatives_site.settings import *  # noqa: F403\n"
        "from tests.derivatives_site.settings import FILERESPONSE\n\n" + textwrap.dedent(settings)
    )
    media_root = tmp_path / "media"
    media_root.mkdir()
    (tmp_path / "outside").mkdir()
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "resource_settings")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, (str(site), os.environ.get("PYTHONPATH"))))
    )
    monkeypatch.setenv("TMPDIR", str(temporary))  # the server's temporary files, to be counted
    monkeypatch.setenv("FILERESPONSE_TEST_LOCK_DIR", str(tmp_path / "locks"))
    for key, value in (environ or {}).items():
        monkeypatch.setenv(key, value)
    media = MediaTree(root=media_root, outside=tmp_path / "outside", files={})
    server = LiveServer(UVICORN, media, tmp_path / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _rss(server: LiveServer) -> int:
    return int(psutil.Process(server.pid).memory_info().rss)


@contextmanager
def peak_rss(server: LiveServer) -> Iterator[list[int]]:
    """Sample the server's RSS every 10 ms while the block runs; yields [peak]."""
    peak = [_rss(server)]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss(server))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join(timeout=10)


def _temporary_copies(tmp_path: Path) -> list[str]:
    """The files in the server's temporary directory (the forkserver's socket is no file)."""
    return sorted(path.name for path in (tmp_path / "tmp").rglob("*") if path.is_file())


# ---------------------------------------------------------------- MinIO sources

MINIO_SETTINGS = """
FILERESPONSE = {
    **FILERESPONSE,
    "DERIVATIVES_SOURCE_STORAGES": ("default", "minio"),
    "DERIVATIVES_WORKERS": 2,
}
"""


@pytest.fixture(scope="module")
def padding() -> bytes:
    """20 MiB of incompressible bytes, shared by the sources (each gets its own header)."""
    return random.Random(20260521).randbytes(SOURCE_BYTES)


@contextmanager
def minio_sources(s3: S3Target, names_and_bytes: dict[str, bytes]) -> Iterator[None]:
    """Objects under ``media/`` (the prefix of tests/project's ``minio`` storage)."""
    client = s3.client()
    for name, data in names_and_bytes.items():
        client.put_object(s3.bucket, f"media/{name}", io.BytesIO(data), len(data))
    try:
        yield
    finally:
        for name in names_and_bytes:
            client.remove_object(s3.bucket, f"media/{name}")


def _non_image(padding: bytes, index: int) -> bytes:
    return b"not an image, number %d\n" % index + padding[: SOURCE_BYTES - 32]


def _padded_jpeg(padding: bytes, index: int) -> bytes:
    """A valid JPEG of 20 MiB: a small image, then bytes after its end (decoders stop there)."""
    picture = images.jpeg((640, 480)) + b"%04d" % index
    return picture + padding[: SOURCE_BYTES - len(picture)]


def _url(name: str, spec: str = "160x120 webp") -> str:
    return "/derivatives/" + signed_path(name, parse_spec(spec), storage="minio")


async def _get_all(server: LiveServer, urls: list[str]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(urls))
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=180) as client:
        return list(await asyncio.gather(*(client.get(url) for url in urls)))


def _warm_up(server: LiveServer, s3: S3Target, run: str, padding: bytes) -> None:
    """The pool, the storage clients and the I/O threads started; one large failure seen."""
    warm = {f"{run}/warm.jpg": images.jpeg((320, 240)), f"{run}/warm.bin": _non_image(padding, 0)}
    with minio_sources(s3, warm):
        assert httpx.get(server.base_url + _url(f"{run}/warm.jpg"), timeout=60).status_code == 200
        assert httpx.get(server.base_url + _url(f"{run}/warm.bin"), timeout=60).status_code == 422
    gc.collect()


@pytest.mark.live
@pytest.mark.slow
@pytest.mark.minio
def test_failed_derivatives_of_large_sources_free_their_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3: S3Target, padding: bytes
) -> None:
    run = f"resources-{secrets.token_hex(4)}"
    environ = s3.environ(FILERESPONSE_TEST_DERIVATIVES_ROOT=str(tmp_path / "derivatives"))
    with derivative_server(
        tmp_path, monkeypatch, settings=MINIO_SETTINGS, environ=environ
    ) as server:
        _warm_up(server, s3, run, padding)
        sources = {
            f"{run}/fail-{index}.jpg": _non_image(padding, index) for index in range(FAILURES)
        }
        with minio_sources(s3, sources):
            before = _rss(server)
            for name in sources:
                response = httpx.get(server.base_url + _url(name), timeout=60)
                assert response.status_code == 422, response.text
            after = _rss(server)
            # Remembered: the second request is refused without a run.
            again = httpx.get(server.base_url + _url(next(iter(sources))), timeout=60)
            assert again.status_code == 422
        log = server.log_tail(200_000)
        leftovers = _temporary_copies(tmp_path)
    growth = after - before
    print(f"RSS {before / MIB:.0f} -> {after / MIB:.0f} MiB over {FAILURES} failures")
    assert growth < FAILURES_GROWTH, f"{growth / MIB:.0f} MiB kept by {FAILURES} failures"
    assert leftovers == []
    assert "Traceback" not in log, log[-4000:]
    assert log.count("not an image") >= FAILURES, "each refusal is logged with its reason"


@pytest.mark.live
@pytest.mark.slow
@pytest.mark.minio
def test_concurrent_misses_on_large_sources_take_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3: S3Target, padding: bytes
) -> None:
    run = f"resources-{secrets.token_hex(4)}"
    environ = s3.environ(FILERESPONSE_TEST_DERIVATIVES_ROOT=str(tmp_path / "derivatives"))
    sources = {
        f"{run}/big-{index}.jpg": (
            _padded_jpeg(padding, index) if index % 2 else _non_image(padding, index)
        )
        for index in range(CONCURRENT)
    }
    with derivative_server(
        tmp_path, monkeypatch, settings=MINIO_SETTINGS, environ=environ
    ) as server:
        _warm_up(server, s3, run, padding)
        with minio_sources(s3, sources):
            before = _rss(server)
            with peak_rss(server) as peak:
                responses = asyncio.run(_get_all(server, [_url(name) for name in sources]))
            after = _rss(server)
        log = server.log_tail(200_000)
        leftovers = _temporary_copies(tmp_path)
    statuses = [response.status_code for response in responses]
    assert statuses == [422 if index % 2 == 0 else 200 for index in range(CONCURRENT)], log[-4000:]
    for index, response in enumerate(responses):
        if index % 2:
            assert images.decode(response.content).size == (160, 120)
    growth = peak[0] - before
    print(
        f"RSS {before / MIB:.0f} MiB, peak {peak[0] / MIB:.0f} MiB, after {after / MIB:.0f} MiB "
        f"for {CONCURRENT} concurrent misses of {SOURCE_BYTES // MIB} MiB sources"
    )
    assert growth < CONCURRENT_GROWTH, f"peak {growth / MIB:.0f} MiB over the baseline"
    assert leftovers == [], "every temporary copy was deleted"
    assert "Traceback" not in log, log[-4000:]


# ---------------------------------------------------------------- a full disk

DISK_SETTINGS = """
FILERESPONSE = {**FILERESPONSE, "DERIVATIVES_WORKERS": 1}
"""
TMPFS_BYTES = 2 * MIB


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB file system (tmpfs), mounted for the test; skipped where mount is refused."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError as error:
        pytest.skip(f"cannot run mount: {error}")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False, timeout=30)


def _fill(root: Path, leave: int) -> Path:
    """A file that leaves about ``leave`` bytes free under ``root``."""
    filler = root / "filler"
    with filler.open("wb") as file:
        chunk = b"\0" * 65536
        while True:
            info = os.statvfs(root)
            free = info.f_bavail * info.f_frsize
            if free <= leave:
                break
            try:
                file.write(chunk[: max(info.f_frsize, min(len(chunk), free - leave))])
                file.flush()
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                break
    return filler


def _files_under(root: Path, skip: Callable[[Path], bool]) -> list[str]:
    return sorted(
        str(path.relative_to(root)) for path in root.rglob("*") if path.is_file() and not skip(path)
    )


@pytest.mark.live
@pytest.mark.slow
def test_a_full_disk_is_a_507_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_filesystem: Path
) -> None:
    derivatives = small_filesystem
    environ = {"FILERESPONSE_TEST_DERIVATIVES_ROOT": str(derivatives)}
    with derivative_server(
        tmp_path, monkeypatch, settings=DISK_SETTINGS, environ=environ
    ) as server:
        # Noise: its PNG derivative (about 770 KiB) cannot be compressed to fit.
        noise = random.Random(7).randbytes(512 * 512 * 3)
        from PIL import Image

        picture = Image.frombytes("RGB", (512, 512), noise)
        (server.media_root / "noise.png").write_bytes(images.encode(picture, "PNG"))
        url = server.base_url + "/derivatives/" + signed_path("noise.png", parse_spec("512x512"))

        def is_filler(path: Path) -> bool:
            return path.name == "filler"

        # No space at all: the manifest (source.json) cannot be written.
        filler = _fill(derivatives, leave=0)
        full = httpx.get(url, timeout=60)
        assert full.status_code == 507, full.text
        assert full.text == "507 Insufficient Storage\n"  # the reason is in the log
        assert full.headers["Retry-After"]
        assert _files_under(derivatives, is_filler) == [], "nothing written, no temporary file"

        # Room for the manifest, not for the derivative.
        filler.unlink()
        filler = _fill(derivatives, leave=64 * 1024)
        short = httpx.get(url, timeout=60)
        assert short.status_code == 507, short.text
        left = _files_under(derivatives, is_filler)
        assert [name for name in left if not name.endswith("/source.json")] == [], left

        # Space again: made, stored whole, served.
        filler.unlink()
        made = httpx.get(url, timeout=60)
        assert made.status_code == 200, made.text
        assert images.decode(made.content).size == (512, 512)
        stored = [
            derivatives / name for name in _files_under(derivatives, is_filler) if "512x512" in name
        ]
        assert len(stored) == 1
        assert stored[0].read_bytes() == made.content
        assert not list(derivatives.rglob("*.tmp"))
        hit = httpx.get(url, timeout=60)
        assert hit.status_code == 200
        assert hit.content == made.content
        log = server.log_tail(100_000)
    assert "Traceback" not in log, log[-4000:]
    assert log.count("no space left in the derivative storage") == 2, log[-4000:]


async def test_no_space_for_the_copy_is_a_507_and_leaves_nothing(
    remote: Path, tmp_path: Path, small_filesystem: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temporary directory is full: InsufficientStorage, no partial copy, no job."""
    monkeypatch.setattr(tempfile, "tempdir", str(small_filesystem))
    _remote_source(tmp_path, "large.jpg", 3 * MIB)  # more than the 2 MiB file system holds
    ScriptedExecutor.behaviour = _fails
    with pytest.raises(exceptions.InsufficientStorage, match="no space left for a temporary copy"):
        await _obtain(OpaqueStorage(location=str(tmp_path / "remote")), "large.jpg")
    assert _files(small_filesystem) == []
    assert ScriptedExecutor.jobs == []
