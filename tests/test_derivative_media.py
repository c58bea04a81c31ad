"""Media derivatives: PDF pages, video posters, audio waveforms and peaks.

Each output is checked by decoding it. Sources are made by tests/media.py
(ffmpeg's test sources, a PDF of coloured rectangles); the in-process tests
run jobs in threads, the live test through uvicorn and the process pool.
"""

from __future__ import annotations

import io
import json
import os
import time
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PIL")
pytest.importorskip("imageio_ffmpeg")
pytest.importorskip("pypdfium2")

from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient
from django.urls import include, path
from PIL import Image

from fileresponse.conf import get_config
from fileresponse.derivatives import executor as executor_module
from fileresponse.derivatives.exceptions import (
    BeyondSource,
    CorruptMedia,
    ProcessingUnavailable,
    SourceTooLarge,
)
from fileresponse.derivatives.links import derivative_url
from fileresponse.derivatives.pipeline import clear_negative_cache
from fileresponse.derivatives.processors import audio, media, processor_for, video
from fileresponse.derivatives.processors.pdf import PdfJob, PdfProcessor, render_scale
from fileresponse.derivatives.spec import parse_spec
from tests import images
from tests import media as test_media

urlpatterns = [path("derivatives/", include("fileresponse.derivatives.urls"))]

SECONDS = 3.0

# ---------------------------------------------------------------- the probe, pure

VIDEO_PROBE = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'v720.mp4':
  Duration: 00:00:30.00, start: 0.000000, bitrate: 338 kb/s
  Stream #0:0[0x1](und): Video: h264 (Constrained Baseline) (avc1 / 0x31637661), \
yuv420p(tv, bt709, progressive), 1280x720 [SAR 1:1 DAR 16:9], 264 kb/s, 25 fps (default)
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, mono, fltp (default)
At least one output file must be specified
"""
MP3_WITH_COVER = """\
Input #0, mp3, from 'song.mp3':
  Duration: 01:02:03.50, start: 0.023021, bitrate: 65 kb/s
  Stream #0:0: Audio: mp3 (mp3float), 44100 Hz, stereo, fltp, 64 kb/s
  Stream #0:1: Video: mjpeg (Baseline), yuvj420p(pc), 500x500, 90k tbr (attached pic)
"""
NO_DURATION = """\
Input #0, matroska,webm, from 'live.webm':
  Duration: N/A, start: 0.000000, bitrate: N/A
  Stream #0:0: Video: vp9 (Profile 0), yuv420p(tv), 640x360, SAR 1:1 DAR 16:9, 30 fps
"""
NOT_MEDIA = """\
[in#0 @ 0x5593b408dcc0] Error opening input: Invalid data found when processing input
Error opening input file bad.mp3.
"""


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (VIDEO_PROBE, media.MediaInfo(30.0, 1280, 720, "h264", "aac", 48000)),
        (MP3_WITH_COVER, media.MediaInfo(3723.5, None, None, None, "mp3", 44100)),
        (NO_DURATION, media.MediaInfo(None, 640, 360, "vp9", None, None)),
    ],
)
def test_the_probe_is_parsed(stderr: str, expected: media.MediaInfo) -> None:
    assert media.parse_probe(stderr) == expected


def test_a_probe_without_a_container_is_corrupt_media() -> None:
    with pytest.raises(CorruptMedia):
        media.parse_probe(NOT_MEDIA)


@pytest.mark.parametrize(
    ("seek", "fraction", "duration", "expected"),
    [
        (2.0, None, 30.0, 2.0),
        (None, 0.5, 30.0, 15.0),
        (None, 1.0, 30.0, 29.9),
        (5.0, None, None, 5.0),
    ],
)
def test_the_poster_time(
    seek: float | None, fraction: float | None, duration: float | None, expected: float
) -> None:
    assert video.seek_time(seek, fraction, duration) == pytest.approx(expected)


@pytest.mark.parametrize(("seek", "fraction"), [(30.0, None), (90.0, None), (None, 0.5)])
def test_a_poster_time_past_the_end_or_unknown_is_refused(
    seek: float | None, fraction: float | None
) -> None:
    with pytest.raises(BeyondSource):
        video.seek_time(seek, fraction, 30.0 if seek is not None else None)


def test_peaks_are_min_max_pairs_of_equal_spans() -> None:
    samples = array("h", [0, 16384, -16384, 32767, -32768, 0, 8192, -8192])
    assert audio.peaks(samples, 4) == [[0.0, 0.5], [-0.5, 1.0], [-1.0, 0.0], [-0.25, 0.25]]
    assert audio.peaks(array("h", [16384]), 3) == [[0.5, 0.5]] * 3
    assert audio.peaks(array("h"), 2) == [[0.0, 0.0]] * 2


@pytest.mark.parametrize(
    ("spec", "scale"),
    [
        ("page=1", 1.0),
        ("page=1 300x", 0.5),
        ("page=1 300x300", 0.375),
        ("page=1 300x300 fill", 0.5),
    ],
)
def test_a_page_is_rendered_at_the_scale_of_its_box(spec: str, scale: float) -> None:
    assert render_scale(parse_spec(spec), 600, 800) == pytest.approx(scale)


# ---------------------------------------------------------------- ffmpeg itself


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    test_media.video(root / "clip.mp4", seconds=SECONDS)
    test_media.sound(root / "tone.mp3", seconds=SECONDS)
    (root / "doc.pdf").write_bytes(test_media.pdf(pages=3))
    for name in ("broken.mp4", "broken.pdf", "broken.mp3"):
        (root / name).write_bytes(test_media.corrupt())
    return root


def test_probe_reads_what_ffmpeg_made(sources: Path) -> None:
    clip = media.probe(test_media.ffmpeg(), str(sources / "clip.mp4"), timeout=10)
    assert clip.duration == pytest.approx(SECONDS, abs=0.1)
    assert (clip.width, clip.height, clip.video_codec) == (320, 240, "h264")
    assert (clip.audio_codec, clip.sample_rate) == ("aac", 48000)
    tone = media.probe(test_media.ffmpeg(), str(sources / "tone.mp3"), timeout=10)
    assert (tone.video_codec, tone.audio_codec, tone.sample_rate) == (None, "mp3", 48000)
    with pytest.raises(CorruptMedia):
        media.probe(test_media.ffmpeg(), str(sources / "broken.mp4"), timeout=10)


def test_a_run_over_its_timeout_is_killed_with_its_process_group() -> None:
    started = time.monotonic()
    with pytest.raises(ProcessingUnavailable, match="longer than"):
        media.run_ffmpeg(
            test_media.ffmpeg(),
            ["-hide_banner", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc", "-f", "null", "-"],
            timeout=0.5,
        )
    assert time.monotonic() - started < 5
    psutil = pytest.importorskip("psutil")
    left = [child.name() for child in psutil.Process().children(recursive=True)]
    assert not [name for name in left if "ffmpeg" in name], left


def test_ffmpeg_is_the_setting_or_the_wheels(monkeypatch: pytest.MonkeyPatch) -> None:
    assert media.ffmpeg_path(get_config(FFMPEG="/opt/ffmpeg")) == "/opt/ffmpeg"
    assert media.ffmpeg_path(get_config()) == test_media.ffmpeg()
    monkeypatch.setitem(__import__("sys").modules, "imageio_ffmpeg", None)
    with pytest.raises(ImproperlyConfigured, match=r"fileresponse\[video\]"):
        media.ffmpeg_path(get_config())


def test_a_page_job_reads_the_file_or_its_bytes(sources: Path) -> None:
    spec = parse_spec("page=3 150x png")
    data = (sources / "doc.pdf").read_bytes()
    for job in (
        PdfJob(3, spec, "png", 2000, 10**8, path=str(sources / "doc.pdf")),
        PdfJob(3, spec, "png", 2000, 10**8, data=data),
    ):
        image = images.decode(PdfProcessor.run(job).data)
        assert image.size == (150, 200)
        assert images.close(image.convert("RGB").getpixel((20, 20)), test_media.PAGE_COLORS[2])
    with pytest.raises(SourceTooLarge, match="pages"):
        PdfProcessor.run(PdfJob(1, spec, "png", 2, 10**8, data=data))
    with pytest.raises(SourceTooLarge, match="pixels"):
        PdfProcessor.run(PdfJob(1, spec, "png", 2000, 1000, data=data))


def test_a_poster_job_reads_the_bytes_of_a_remote_source(sources: Path) -> None:
    limits = media.MediaLimits.from_config(get_config())
    job = video.PosterJob(
        parse_spec("poster t=1s 80x60 png"),
        "png",
        limits,
        seek=1.0,
        data=(sources / "clip.mp4").read_bytes(),
    )
    assert images.decode(video.VideoProcessor.run(job).data).size == (80, 60)


def test_without_pypdfium2_a_page_names_the_extra(
    sources: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "pypdfium2", None)
    job = PdfJob(1, parse_spec("page=1"), "png", 2000, 10**8, path=str(sources / "doc.pdf"))
    with pytest.raises(ImproperlyConfigured, match=r"fileresponse\[pdf\]"):
        PdfProcessor.run(job)


# ---------------------------------------------------------------- through the view


@pytest.fixture
def site(settings: Any, sources: Path, tmp_path: Path) -> Iterator[Path]:
    settings.ROOT_URLCONF = __name__
    settings.MEDIA_ROOT = str(sources)
    settings.STORAGES = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    settings.FILERESPONSE = {
        "DERIVATIVES_ROOT": str(tmp_path / "derivatives"),
        "DERIVATIVES_LOCK_DIR": str(tmp_path / "locks"),
        "DERIVATIVES_EXECUTOR": "thread",
        "DERIVATIVES_WORKERS": 2,
    }
    clear_negative_cache()
    try:
        yield tmp_path / "derivatives"
    finally:
        executor_module.reset_executor()
        clear_negative_cache()


async def fetch(source: str, spec: str) -> tuple[int, str, bytes]:
    response = await AsyncClient().get(derivative_url(source, spec))
    if hasattr(response, "streaming_content"):
        body = b"".join([chunk async for chunk in response.streaming_content])
    else:
        body = response.content
    return response.status_code, response.get("Content-Type", ""), body


def stored(root: Path) -> list[Path]:
    return [found for found in root.rglob("*") if found.is_file()] if root.exists() else []


@pytest.mark.parametrize(
    ("spec", "size", "content_type"),
    [
        ("poster t=1s 160x120 jpeg", (160, 120), "image/jpeg"),
        ("poster t=50% 200x webp", (200, 150), "image/webp"),
        ("poster t=100% 64x64 fill png", (64, 64), "image/png"),
    ],
)
async def test_a_poster_is_a_frame_of_the_video(
    site: Path, spec: str, size: tuple[int, int], content_type: str
) -> None:
    status, got_type, body = await fetch("clip.mp4", spec)
    assert status == 200, body
    assert got_type == content_type
    image = images.decode(body)
    assert image.size == size
    assert image.format == content_type.split("/")[1].upper()


async def test_a_pdf_page_is_an_image_of_that_page(site: Path) -> None:
    status, content_type, body = await fetch("doc.pdf", "page=2 300x jpeg")
    assert status == 200, body
    assert content_type == "image/jpeg"
    image = images.decode(body).convert("RGB")
    assert image.size == (300, 400)
    assert images.close(image.getpixel((30, 30)), test_media.PAGE_COLORS[1])
    assert images.close(image.getpixel((270, 370)), (255, 255, 255))
    status, content_type, body = await fetch("doc.pdf", "page=1")
    assert (status, content_type) == (200, "image/png")
    assert images.decode(body).size == test_media.PAGE_SIZE


async def test_a_page_beyond_the_document_is_422_with_a_reason(site: Path, settings: Any) -> None:
    settings.DEBUG = True
    status, _, body = await fetch("doc.pdf", "page=4 100x png")
    assert status == 422
    assert b"page 4 of a document of 3 pages" in body


async def test_a_waveform_is_a_png_of_its_box(site: Path) -> None:
    status, content_type, body = await fetch("tone.mp3", "waveform 800x120 png")
    assert (status, content_type) == (200, "image/png")
    image = Image.open(io.BytesIO(body))
    assert (image.format, image.size) == ("PNG", (800, 120))
    assert image.convert("RGBA").getpixel((400, 60))[3] > 0, "the tone is drawn across"


async def test_peaks_are_json_pairs_within_range(site: Path) -> None:
    status, content_type, body = await fetch("tone.mp3", "peaks 800 json")
    assert status == 200
    assert content_type.startswith("application/json")
    document = json.loads(body)
    assert document["points"] == 800
    assert document["duration"] == pytest.approx(SECONDS, abs=0.1)
    pairs = document["peaks"]
    assert len(pairs) == 800
    assert all(-1.0 <= low <= high <= 1.0 for low, high in pairs)
    assert max(high for _, high in pairs) > 0.05, "the tone is heard"


@pytest.mark.parametrize(
    ("source", "spec"),
    [
        ("broken.mp4", "poster t=1s 160x jpeg"),
        ("broken.pdf", "page=1 100x png"),
        ("broken.mp3", "peaks 100 json"),
        ("broken.mp3", "waveform 100x20 png"),
    ],
)
async def test_corrupt_media_is_4xx_and_never_stored(site: Path, source: str, spec: str) -> None:
    status, _, _ = await fetch(source, spec)
    assert status == 422
    assert stored(site) == []


@pytest.mark.parametrize(
    ("source", "spec"),
    [
        ("clip.mp4", "300x200"),
        ("clip.mp4", "page=1"),
        ("doc.pdf", "poster t=1s"),
        ("tone.mp3", "poster t=1s"),
        ("tone.mp3", "page=2 100x"),
    ],
)
async def test_a_spec_of_another_kind_is_400(site: Path, source: str, spec: str) -> None:
    status, _, _ = await fetch(source, spec)
    assert status == 400
    assert stored(site) == []


@pytest.mark.parametrize(
    ("source", "spec", "module"),
    [
        ("clip.mp4", "poster t=1s 160x jpeg", video),
        ("tone.mp3", "peaks 100 json", audio),
        ("tone.mp3", "waveform 100x20 png", audio),
    ],
)
async def test_a_source_over_the_duration_limit_is_422_before_decoding(
    site: Path, settings: Any, monkeypatch: pytest.MonkeyPatch, source: str, spec: str, module: Any
) -> None:
    def no_decoding(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the heavy step ran")

    monkeypatch.setattr(module, "run_ffmpeg", no_decoding)  # the probe runs through media's
    settings.FILERESPONSE = {**settings.FILERESPONSE, "DERIVATIVES_MAX_DURATION": 2}
    settings.DEBUG = True
    status, _, body = await fetch(source, spec)
    assert status == 422
    assert b"too long" in body
    assert stored(site) == []


def test_a_missing_media_library_is_a_warning(settings: Any, tmp_path: Path) -> None:
    settings.ROOT_URLCONF = __name__  # derivatives in use
    settings.FILERESPONSE = {"FFMPEG": str(tmp_path / "no-ffmpeg")}
    messages = [message for message in run_checks() if message.id == "fileresponse.W030"]
    assert len(messages) == 1
    assert "FFMPEG" in messages[0].msg
    settings.FILERESPONSE = {"FFMPEG": test_media.ffmpeg()}
    assert [message for message in run_checks() if message.id == "fileresponse.W030"] == []


def test_the_media_kinds_are_registered() -> None:
    assert processor_for("a/b.PDF").kind == "pdf"
    assert processor_for("a/b.webm").kind == "video"
    assert processor_for("a/b.flac").kind == "audio"
    assert processor_for("a/b.jpg").kind == "image"


# ---------------------------------------------------------------- a real server


@pytest.mark.live
@pytest.mark.slow
def test_media_derivatives_through_a_real_server_and_the_process_pool(
    sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fileresponse.derivatives.signing import signed_path
    from tests import rawhttp
    from tests.servers import SERVER_KINDS, LiveServer, MediaTree

    media_tree = MediaTree(root=sources, outside=tmp_path / "outside", files={})
    media_tree.outside.mkdir()
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.derivatives_site.settings")
    monkeypatch.setenv("FILERESPONSE_TEST_DERIVATIVES_ROOT", str(tmp_path / "derivatives"))
    monkeypatch.setenv("FILERESPONSE_TEST_LOCK_DIR", str(tmp_path / "locks"))
    server = LiveServer(SERVER_KINDS["uvicorn-patched"], media_tree, tmp_path / "server.log")
    server.start()
    try:
        answers = {
            spec: rawhttp.request(
                server.host,
                server.port,
                "GET",
                "/derivatives/" + signed_path(name, parse_spec(spec)),
            )
            for name, spec in (
                ("clip.mp4", "poster t=1s 160x120 jpeg"),
                ("doc.pdf", "page=3 150x png"),
                ("tone.mp3", "peaks 50 json"),
            )
        }
    finally:
        server.stop()
    log = server.log_tail(100_000)
    assert {answer.status for answer in answers.values()} == {200}, log
    poster = images.decode(answers["poster t=1s 160x120 jpeg"].body)
    assert (poster.format, poster.size) == ("JPEG", (160, 120))
    page = images.decode(answers["page=3 150x png"].body).convert("RGB")
    assert page.size == (150, 200)
    assert images.close(page.getpixel((20, 20)), test_media.PAGE_COLORS[2])
    peaks = json.loads(answers["peaks 50 json"].body)
    assert (peaks["points"], len(peaks["peaks"])) == (50, 50)
    assert log.count("generated ") == 3, log
    assert "Traceback" not in log
    assert os.path.isdir(tmp_path / "derivatives")
