"""The derivative view in-process: misses, hits, HTTP semantics, bad input, atomicity."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PIL")

from django.test import AsyncClient
from django.urls import include, path

from fileresponse.conf import validate
from fileresponse.derivatives import executor as executor_module
from fileresponse.derivatives.executor import ThreadJobExecutor, get_executor
from fileresponse.derivatives.links import derivative_url
from fileresponse.derivatives.maintenance import purge
from fileresponse.derivatives.pipeline import clear_negative_cache
from fileresponse.derivatives.signing import sign
from fileresponse.derivatives.store import DerivativeStore, get_store
from tests import images
from tests.fields import description, milliseconds, outcome_of

urlpatterns = [path("derivatives/", include("fileresponse.derivatives.urls"))]

GENERATED = "generated "


class CountingExecutor(ThreadJobExecutor):
    """Threads, counting the jobs run (class-wide, the executor is rebuilt per settings)."""

    runs = 0
    #: Seconds each job takes longer (a herd's requests all arrive during the run).
    delay = 0.0

    async def run(self, job: Any) -> Any:
        type(self).runs += 1
        await asyncio.sleep(type(self).delay)
        return await super().run(job)


@pytest.fixture
def media(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    (root / "photos").mkdir(parents=True)
    (root / "photos" / "landscape.jpg").write_bytes(images.jpeg((1200, 800)))
    (root / "photos" / "alpha.png").write_bytes(images.png_with_alpha((400, 300)))
    (root / "photos" / "rotated.jpg").write_bytes(images.rotated_jpeg((400, 200), 6))
    bad = root / "bad"
    bad.mkdir()
    (bad / "text.jpg").write_bytes(b"I am not an image\n" * 20)
    full = images.jpeg((600, 400))
    (bad / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (bad / "bomb.png").write_bytes(images.png_bomb(30_000))
    (bad / "empty.png").write_bytes(b"")
    return root


@pytest.fixture
def configured(settings: Any, media: Path, tmp_path: Path) -> Iterator[Path]:
    """Settings for these tests; yields the derivative root."""
    settings.ROOT_URLCONF = __name__
    settings.MEDIA_ROOT = str(media)
    settings.MEDIA_URL = "/files/"
    settings.STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    derivatives = tmp_path / "derivatives"
    settings.FILERESPONSE = {
        "DERIVATIVES_ROOT": str(derivatives),
        "DERIVATIVES_EXECUTOR": f"{__name__}.CountingExecutor",
    }
    CountingExecutor.runs = 0
    CountingExecutor.delay = 0.0
    clear_negative_cache()
    yield derivatives
    executor_module.reset_executor()
    clear_negative_cache()


def stored_files(root: Path) -> list[Path]:
    """Derivatives and manifests (not lock files)."""
    if not root.exists():
        return []
    return sorted(path for path in root.rglob("*") if path.is_file() and ".locks" not in path.parts)


async def body(response: Any) -> bytes:
    if not getattr(response, "streaming", False):
        return bytes(response.content)
    # The test client swaps the body of HEAD and 304 responses for a (sync) empty list.
    content = response.streaming_content
    if hasattr(content, "__aiter__"):
        return b"".join([chunk async for chunk in content])
    return b"".join(content)


def generated_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "fileresponse.derivatives" and record.getMessage().startswith(GENERATED)
    ]


# ---------------------------------------------------------------- miss, then hit


async def test_miss_then_hit(configured: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fileresponse.derivatives")
    url = derivative_url("photos/landscape.jpg", "300x200 fill webp")
    client = AsyncClient()
    first = await client.get(url)
    assert first.status_code == 200
    first_body = await body(first)
    assert first["Content-Type"] == "image/webp"
    assert images.decode(first_body).size == (300, 200)
    records = generated_records(caplog)
    assert len(records) == 1
    message = records[0].getMessage()
    assert "300x200_fill.webp" in message
    assert " ms " in message

    second = await client.get(url)
    assert second.status_code == 200
    assert await body(second) == first_body
    assert len(generated_records(caplog)) == 1, "a hit does not process"
    assert CountingExecutor.runs == 1
    assert [path.name for path in stored_files(configured)] == ["300x200_fill.webp", "source.json"]


async def test_hit_has_the_http_semantics_of_files(configured: Path) -> None:
    url = derivative_url("photos/landscape.jpg", "300x200")
    client = AsyncClient()
    whole = await client.get(url)
    data = await body(whole)
    assert whole["Content-Length"] == str(len(data))
    assert whole["Accept-Ranges"] == "bytes"
    assert whole["X-Content-Type-Options"] == "nosniff"
    assert whole["Content-Disposition"] == 'inline; filename="landscape.jpg"'
    etag = whole["ETag"]
    assert etag
    assert whole["Last-Modified"]
    assert whole["Cache-Control"] == "max-age=3600"  # no version in the URL

    ranged = await client.get(url, headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206
    assert await body(ranged) == data[:10]
    assert ranged["Content-Range"] == f"bytes 0-9/{len(data)}"

    not_modified = await client.get(url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert await body(not_modified) == b""

    head = await client.head(url)
    assert head.status_code == 200
    assert head["Content-Length"] == str(len(data))
    assert await body(head) == b""

    post = await client.post(url)
    assert post.status_code == 405


async def test_versioned_url_is_immutable(configured: Path) -> None:
    url = derivative_url("photos/landscape.jpg", "300x200", version=7)
    response = await AsyncClient().get(url)
    assert response.status_code == 200
    assert response["Cache-Control"] == "max-age=31536000, immutable"


async def test_a_head_miss_processes_too(configured: Path) -> None:
    url = derivative_url("photos/landscape.jpg", "64x64 png")
    response = await AsyncClient().head(url)
    assert response.status_code == 200
    assert int(response["Content-Length"]) > 0
    assert CountingExecutor.runs == 1


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("image/avif,image/webp,image/apng,image/*,*/*;q=0.8", "image/avif"),
        ("image/webp,*/*", "image/webp"),
        ("image/avif;q=0,image/webp", "image/webp"),
        ("image/*,*/*;q=0.8", "image/jpeg"),  # wildcards do not count
        (None, "image/jpeg"),
    ],
)
async def test_auto_follows_accept(configured: Path, accept: str | None, content_type: str) -> None:
    url = derivative_url("photos/landscape.jpg", "120x80 auto")
    headers = {"Accept": accept} if accept else {}
    response = await AsyncClient().get(url, headers=headers)
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Vary"] == "Accept"
    assert images.decode(await body(response)).size == (120, 80)


async def test_auto_falls_back_to_png_for_png_sources(configured: Path) -> None:
    url = derivative_url("photos/alpha.png", "100x75 auto")
    response = await AsyncClient().get(url)
    assert response["Content-Type"] == "image/png"
    assert images.decode(await body(response)).mode == "RGBA"


async def test_no_format_keeps_the_family(configured: Path) -> None:
    client = AsyncClient()
    jpeg = await client.get(derivative_url("photos/landscape.jpg", "100x100"))
    png = await client.get(derivative_url("photos/alpha.png", "100x100"))
    assert jpeg["Content-Type"] == "image/jpeg"
    assert png["Content-Type"] == "image/png"
    assert "Vary" not in jpeg


async def test_exif_rotated_source(configured: Path) -> None:
    response = await AsyncClient().get(derivative_url("photos/rotated.jpg", "100x100 png"))
    decoded = images.decode(await body(response))
    assert decoded.size == (50, 100)
    assert not decoded.getexif()


async def test_changed_source_gets_a_new_derivative_and_purge_removes_the_old(
    configured: Path, media: Path
) -> None:
    url = derivative_url("photos/landscape.jpg", "200x200")
    client = AsyncClient()
    before = await body(await client.get(url))
    source = media / "photos" / "landscape.jpg"
    source.write_bytes(images.encode(images.quadrants((900, 900)), "JPEG"))
    os.utime(source, (time.time() + 5, time.time() + 5))
    after = await body(await client.get(url))
    assert before != after
    assert images.decode(after).size == (200, 200)
    assert CountingExecutor.runs == 2
    assert len([path for path in stored_files(configured) if path.suffix == ".jpg"]) == 2
    report = await asyncio.to_thread(purge, get_store())
    assert report.sources_changed == 1
    assert report.removed == 1
    remaining = [path for path in stored_files(configured) if path.suffix == ".jpg"]
    assert len(remaining) == 1
    assert remaining[0].read_bytes() == after


# ---------------------------------------------------------------- serving modes


async def test_redirect_mode(configured: Path, settings: Any, media: Path) -> None:
    settings.FILERESPONSE = {
        **settings.FILERESPONSE,
        "DERIVATIVES_ROOT": None,  # MEDIA_ROOT/derivatives, served at MEDIA_URL/derivatives/
        "DERIVATIVES_SERVE": "redirect",
    }
    response = await AsyncClient().get(derivative_url("photos/landscape.jpg", "90x60 auto"))
    assert response.status_code == 302
    assert outcome_of(response.headers.get) == "miss"
    location = response["Location"]
    assert location.startswith("/files/derivatives/pillow-1/default/")
    assert location.endswith("/90x60.jpg")
    assert response["Cache-Control"] == "private, no-store"
    assert response["Vary"] == "Accept"
    stored = media / location.removeprefix("/files/")
    assert images.decode(stored.read_bytes()).size == (90, 60)


async def test_accel_mode(configured: Path, settings: Any) -> None:
    settings.FILERESPONSE = {
        **settings.FILERESPONSE,
        "DERIVATIVES_SERVE": "accel",
        "DERIVATIVES_ACCEL_PREFIX": "/protected/",
    }
    url = derivative_url("photos/landscape.jpg", "90x60 webp", version="v1")
    response = await AsyncClient().get(url)
    assert response.status_code == 200
    assert outcome_of(response.headers.get) == "miss"
    accel = response["X-Accel-Redirect"]
    assert accel.startswith("/protected/pillow-1/default/")
    assert accel.endswith("/90x60.webp")
    assert response["Content-Type"] == "image/webp"
    assert response["Cache-Control"] == "max-age=31536000, immutable"
    assert (configured / accel.removeprefix("/protected/")).is_file()
    assert await body(response) == b""


# ---------------------------------------------------------------- Cache-Status, Server-Timing


async def test_a_miss_says_so_then_every_hit(configured: Path) -> None:
    CountingExecutor.delay = 0.05
    url = derivative_url("photos/landscape.jpg", "300x200 fill webp")
    client = AsyncClient()
    miss = await client.get(url)
    assert outcome_of(miss.headers.get) == "miss"
    assert description(miss.headers.get, "process") == "image"
    assert milliseconds(miss.headers.get, "process") >= 50, "the run's time, delay included"
    assert milliseconds(miss.headers.get, "lookup") < milliseconds(miss.headers.get, "process")
    hit = await client.get(url)
    assert outcome_of(hit.headers.get) == "hit"
    # RFC 9211 section 2: a 304 or a 206 is based upon the stored response: it says so too.
    for headers in ({"If-None-Match": hit["ETag"]}, {"Range": "bytes=0-9"}):
        answer = await client.get(url, headers=headers)
        assert answer.status_code in (304, 206)
        assert outcome_of(answer.headers.get) == "hit"
    assert outcome_of((await client.head(url)).headers.get) == "hit"
    assert "Timing-Allow-Origin" not in hit, "the timings are for the same origin only"
    assert CountingExecutor.runs == 1


async def test_responses_the_store_did_not_answer_say_nothing(configured: Path) -> None:
    """RFC 9211 section 2: no Cache-Status on a response generated without the store."""
    client = AsyncClient()
    url = derivative_url("photos/landscape.jpg", "300x200")
    signature = url.split("/")[2]
    forged = url.replace(signature, ("A" if signature[0] != "A" else "B") + signature[1:])
    for refused in (
        await client.get(forged),
        await client.get(derivative_url("bad/text.jpg", "100x100")),
        await client.get(derivative_url("photos/missing.jpg", "100x100")),
    ):
        assert refused.status_code >= 400
        assert outcome_of(refused.headers.get) is None


async def test_a_herd_is_one_miss_and_the_rest_collapsed(configured: Path) -> None:
    CountingExecutor.delay = 0.3
    url = derivative_url("photos/landscape.jpg", "200x100 fill png")
    client = AsyncClient()
    responses = await asyncio.gather(*(client.get(url) for _ in range(8)))
    outcomes = sorted(outcome_of(response.headers.get) or "" for response in responses)
    assert outcomes == ["collapsed"] * 7 + ["miss"]
    assert CountingExecutor.runs == 1
    for response in responses:
        assert milliseconds(response.headers.get, "process") >= 250, "each waited for the run"
    assert outcome_of((await client.get(url)).headers.get) == "hit"


async def test_the_headers_can_be_switched_off(configured: Path, settings: Any) -> None:
    settings.FILERESPONSE = {**settings.FILERESPONSE, "DERIVATIVES_DIAGNOSTIC_HEADERS": False}
    url = derivative_url("photos/landscape.jpg", "64x64 webp")
    client = AsyncClient()
    for response in (await client.get(url), await client.get(url)):
        assert response.status_code == 200
        assert "Cache-Status" not in response
        assert "Server-Timing" not in response
    assert CountingExecutor.runs == 1


@pytest.mark.parametrize(
    ("value", "problems"),
    [
        (True, []),
        (False, []),
        (1, ["DERIVATIVES_DIAGNOSTIC_HEADERS must be bool, not int"]),
        ("off", ["DERIVATIVES_DIAGNOSTIC_HEADERS must be bool, not str"]),
    ],
)
def test_the_switch_is_a_bool(value: object, problems: list[str]) -> None:
    assert validate({"DERIVATIVES_DIAGNOSTIC_HEADERS": value}) == problems


async def test_one_log_line_per_derivative_made(
    configured: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fileresponse.derivatives")
    CountingExecutor.delay = 0.2
    url = derivative_url("photos/landscape.jpg", "webp q=70 300x200 fill")
    client = AsyncClient()
    responses = await asyncio.gather(*(client.get(url) for _ in range(4)))
    await client.get(url)
    (record,) = generated_records(caplog)
    assert record.levelno == logging.INFO
    message = record.getMessage()
    size = len(await body(responses[0]))
    assert re.fullmatch(
        r"generated \S+/300x200_fill_q-70\.webp in [0-9]+\.[0-9] ms "
        rf"\(.+, {size} bytes\) from 'default:photos/landscape\.jpg' by '300x200 fill webp q=70'",
        message,
    ), message
    assert record.source == "default:photos/landscape.jpg"  # type: ignore[attr-defined]
    assert record.spec == "300x200 fill webp q=70"  # type: ignore[attr-defined]
    assert record.size == size  # type: ignore[attr-defined]
    assert 0.2 <= record.duration < 30  # type: ignore[attr-defined]


# ---------------------------------------------------------------- bad input


BAD_REQUESTS = [
    # (source, spec, status, reason fragment)
    ("bad/text.jpg", "100x100", 422, "not an image"),
    ("bad/truncated.jpg", "100x100", 422, "cannot be decoded"),
    ("bad/bomb.png", "100x100", 422, "too large"),
    ("bad/empty.png", "100x100", 422, "not an image"),
    ("photos/landscape.jpg", "9000x100", 400, "width 9000 over the limit 4096"),
    ("photos/landscape.jpg", "100x65535 fill", 400, "height 65535 over the limit"),
    ("photos/missing.jpg", "100x100", 404, "no such file"),
]


@pytest.mark.parametrize(
    ("source", "spec", "status", "reason"),
    BAD_REQUESTS,
    ids=[f"{case[0]} {case[1]}" for case in BAD_REQUESTS],
)
async def test_bad_input_is_a_4xx_and_nothing_is_stored(
    configured: Path,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    source: str,
    spec: str,
    status: int,
    reason: str,
) -> None:
    caplog.set_level(logging.INFO, logger="fileresponse")
    response = await AsyncClient().get(derivative_url(source, spec))
    assert response.status_code == status
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    # In production the body is terse; the reason is in the log, one line.
    assert await body(response) == f"{status} {HTTPStatus(status).phrase}\n".encode()
    refusals = [r for r in caplog.records if r.name == "fileresponse" and "refused" in r.msg]
    assert len(refusals) == 1
    assert reason in refusals[0].getMessage() or status == 404
    assert refusals[0].levelno == (logging.INFO if status == 404 else logging.WARNING)
    assert stored_files(configured) == []
    assert generated_records(caplog) == []
    # Under DEBUG the body says why.
    settings.DEBUG = True
    clear_negative_cache()
    debug = await AsyncClient().get(derivative_url(source, spec))
    assert debug.status_code == status
    assert reason in (await body(debug)).decode()


async def test_source_bytes_limit_is_checked_before_reading(
    configured: Path, settings: Any
) -> None:
    settings.FILERESPONSE = {**settings.FILERESPONSE, "DERIVATIVES_MAX_SOURCE_BYTES": 1000}
    settings.DEBUG = True
    response = await AsyncClient().get(derivative_url("photos/landscape.jpg", "100x100"))
    assert response.status_code == 422
    assert b"source too large" in await body(response)
    assert CountingExecutor.runs == 0


async def test_unsupported_format(configured: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where Pillow lacks AVIF: ``400 unsupported format``, and ``auto`` skips it."""
    monkeypatch.setattr(
        "fileresponse.derivatives.processors.imaging.output_formats",
        lambda engine: frozenset({"jpeg", "png", "webp"}),
    )
    client = AsyncClient()
    response = await client.get(derivative_url("photos/landscape.jpg", "100x100 avif"))
    assert response.status_code == 400
    assert await body(response) == b"400 Bad Request\n"
    auto = await client.get(
        derivative_url("photos/landscape.jpg", "100x100 auto"),
        headers={"Accept": "image/avif,image/webp"},
    )
    assert auto["Content-Type"] == "image/webp"


async def test_tampered_and_unsigned_urls_are_403_and_no_work(configured: Path) -> None:
    url = derivative_url("photos/landscape.jpg", "100x100")
    client = AsyncClient()
    tampered = url.replace("100x100", "200x200")
    unsigned = "/derivatives/x/100x100/photos/landscape.jpg"
    for bad in (tampered, unsigned, url.replace("landscape", "other")):
        response = await client.get(bad)
        assert response.status_code == 403
    assert CountingExecutor.runs == 0
    assert stored_files(configured) == []


async def test_signed_but_invalid_spec_is_400(configured: Path, settings: Any) -> None:
    settings.DEBUG = True
    options, name = "100x100,sideways", "photos/landscape.jpg"
    url = f"/derivatives/{sign(f'{options}/{name}')}/{options}/{name}"
    response = await AsyncClient().get(url)
    assert response.status_code == 400
    assert b"sideways" in await body(response)


async def test_failures_are_remembered_briefly(configured: Path, settings: Any) -> None:
    url = derivative_url("bad/text.jpg", "100x100")
    client = AsyncClient()
    assert (await client.get(url)).status_code == 422
    assert (await client.get(url)).status_code == 422
    assert CountingExecutor.runs == 1, "the second refusal comes from the negative cache"
    clear_negative_cache()
    settings.FILERESPONSE = {**settings.FILERESPONSE, "DERIVATIVES_NEGATIVE_TTL": None}
    CountingExecutor.runs = 0
    assert (await client.get(url)).status_code == 422
    assert (await client.get(url)).status_code == 422
    assert CountingExecutor.runs == 2


async def test_a_fixed_source_is_tried_again_at_once(configured: Path, media: Path) -> None:
    url = derivative_url("bad/text.jpg", "100x100")
    client = AsyncClient()
    assert (await client.get(url)).status_code == 422
    (media / "bad" / "text.jpg").write_bytes(images.jpeg((300, 200)))
    response = await client.get(url)
    assert response.status_code == 200
    assert images.decode(await body(response)).size == (100, 67)


async def test_concurrent_misses_in_one_process_run_once(configured: Path) -> None:
    url = derivative_url("photos/landscape.jpg", "250x250 fill png")
    client = AsyncClient()
    responses = await asyncio.gather(*(client.get(url) for _ in range(20)))
    bodies = {await body(response) for response in responses}
    assert {response.status_code for response in responses} == {200}
    assert len(bodies) == 1
    assert CountingExecutor.runs == 1


# ---------------------------------------------------------------- the process pool


@pytest.fixture
def process_pool(configured: Path, settings: Any) -> Iterator[Path]:
    settings.FILERESPONSE = {
        **settings.FILERESPONSE,
        "DERIVATIVES_EXECUTOR": "process",
        "DERIVATIVES_WORKERS": 1,
    }
    yield configured
    executor_module.reset_executor()


@pytest.mark.slow
async def test_the_pool_survives_bad_input(process_pool: Path) -> None:
    client = AsyncClient()
    good = derivative_url("photos/landscape.jpg", "150x100")
    assert (await client.get(good)).status_code == 200
    pool = get_executor()
    assert isinstance(pool, executor_module.ProcessPoolJobExecutor)
    workers = pool.worker_pids
    assert len(workers) == 1
    for source in ("bad/text.jpg", "bad/truncated.jpg", "bad/bomb.png", "bad/empty.png"):
        response = await client.get(derivative_url(source, "100x100"))
        assert response.status_code == 422, source
    assert pool.worker_pids == workers, "the same worker, still alive"
    again = await client.get(derivative_url("photos/landscape.jpg", "120x80 webp"))
    assert again.status_code == 200
    assert images.decode(await body(again)).size == (120, 80)
    assert {path.name for path in stored_files(process_pool)} == {
        "150x100.jpg",
        "120x80.webp",
        "source.json",
    }


@pytest.mark.slow
async def test_a_run_killed_midway_leaves_nothing_that_looks_done(process_pool: Path) -> None:
    """SIGKILL the worker during a long run: 503, nothing stored; the next request works."""
    client = AsyncClient()
    assert (await client.get(derivative_url("photos/landscape.jpg", "10x10"))).status_code == 200
    pool = get_executor()
    assert isinstance(pool, executor_module.ProcessPoolJobExecutor)
    (worker,) = pool.worker_pids
    heavy = derivative_url("photos/landscape.jpg", "4096x4096 upscale webp q=100")
    request = asyncio.ensure_future(client.get(heavy))
    await _wait_until_busy(worker)
    os.kill(worker, signal.SIGKILL)
    response = await request
    assert response.status_code == 503
    assert response["Retry-After"]
    names = {path.name for path in stored_files(process_pool)}
    assert names == {"10x10.jpg", "source.json"}, "no trace of the killed run"
    again = await client.get(derivative_url("photos/landscape.jpg", "300x300 webp"))
    assert again.status_code == 200, "a new pool took over"


async def _wait_until_busy(pid: int, seconds: float = 10.0) -> None:
    import psutil

    process = psutil.Process(pid)
    start = sum(process.cpu_times()[:2])
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        if sum(process.cpu_times()[:2]) - start > 0.1:
            return
    raise AssertionError("the worker never got busy")


# ---------------------------------------------------------------- atomic writes


def test_a_write_interrupted_leaves_no_final_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.files.storage import FileSystemStorage

    store = DerivativeStore(FileSystemStorage(location=str(tmp_path)))

    def crash(descriptor: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        store.save("a/b/c.webp", b"x" * 1000)
    assert list(tmp_path.rglob("*.webp")) == []
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


@pytest.mark.slow
def test_a_writer_killed_midway_leaves_only_a_temporary_file(tmp_path: Path) -> None:
    """A process SIGKILLed inside the write: the final name never appears; purge cleans up."""
    script = textwrap.dedent(
        f"""
        import os, time
        from django.conf import settings
        settings.configure()
        from django.core.files.storage import FileSystemStorage
        from fileresponse.derivatives.store import DerivativeStore
        def stall(descriptor):
            print("writing", flush=True)
            time.sleep(60)
        os.fsync = stall
        DerivativeStore(FileSystemStorage(location={str(tmp_path)!r})).save(
            "x/y/z.jpg", b"data" * 100000
        )
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == b"writing"
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
    final = tmp_path / "x" / "y" / "z.jpg"
    assert not final.exists()
    leftovers = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(leftovers) == 1
    assert leftovers[0].name.startswith(".z.jpg.")
    assert leftovers[0].name.endswith(".tmp")

    from django.core.files.storage import FileSystemStorage

    store = DerivativeStore(FileSystemStorage(location=str(tmp_path)))
    assert store.find("x/y/z.jpg") is None
    report = purge(store, temp_age=0)
    assert report.temporary == 1
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


# ---------------------------------------------------------------- every handler


def test_same_answer_under_every_handler(configured: Path) -> None:
    """A miss under WSGI, then hits: same status, headers and bytes under the patched and
    stock ASGI handlers and WSGI (full body, a range, a revalidation)."""
    from tests.inprocess import PATHSEND, call_asgi, call_wsgi, patched, stock

    url = derivative_url("photos/landscape.jpg", "160x120 fill webp", version=3)
    first = call_wsgi(url)
    assert first.status == 200
    assert outcome_of(first.header) == "miss"
    assert images.decode(first.body).size == (160, 120)
    etag = first.header("ETag")
    assert etag
    for headers in ([], [("Range", "bytes=5-24")], [("If-None-Match", etag)]):
        exchanges = [
            asyncio.run(call_asgi(patched(), url, headers=headers, extensions=PATHSEND)),
            asyncio.run(call_asgi(stock(), url, headers=headers)),
            call_wsgi(url, headers=headers),
        ]
        reference = exchanges[0]
        assert reference.status in (200, 206, 304)
        assert [outcome_of(exchange.header) for exchange in exchanges] == ["hit"] * 3
        for exchange in exchanges[1:]:
            assert exchange.status == reference.status
            assert exchange.comparable_headers() == reference.comparable_headers()
            assert exchange.body == reference.body
    assert CountingExecutor.runs == 1


@pytest.mark.slow
def test_workers_exit_when_their_server_process_is_killed(tmp_path: Path) -> None:
    """A server process SIGKILLed (a gunicorn worker timeout) leaves no pool processes behind."""
    import psutil

    source = tmp_path / "a.jpg"
    source.write_bytes(images.jpeg((200, 100)))
    script = textwrap.dedent(
        f"""
        import asyncio, os, time
        from django.conf import settings
        settings.configure()
        from fileresponse.derivatives.executor import ProcessPoolJobExecutor
        from fileresponse.derivatives.processors.image import ImageJob
        from fileresponse.derivatives.spec import parse_spec
        pool = ProcessPoolJobExecutor(max_workers=2)
        job = ImageJob(parse_spec("20x20"), "png", 10**8, 10**8, path={str(source)!r})
        asyncio.run(pool.run(job))
        print(*pool.worker_pids, flush=True)
        time.sleep(60)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    ) as owner:
        try:
            assert owner.stdout is not None
            workers = [psutil.Process(int(pid)) for pid in owner.stdout.readline().split()]
            assert workers
            helpers = {worker.parent() for worker in workers} - {None}  # the forkserver
            owner.send_signal(signal.SIGKILL)
            owner.wait(10)
        finally:
            if owner.poll() is None:
                owner.kill()
    _, alive = psutil.wait_procs([*workers, *helpers], timeout=10)  # type: ignore[list-item]
    assert alive == [], "pool processes outlived their server process"
