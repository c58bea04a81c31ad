"""Video and audio transcodes, streamed while ffmpeg makes them, then served from the cache.

Each output is checked by probing it (codec, height, sample rate) and by
decoding it to its end (duration). Sources are made by tests/media.py: a 30 s
640x360 test pattern with a tone. The live tests run real servers
(uvicorn, gunicorn with uvicorn workers, granian) on tests.derivatives_site.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("imageio_ffmpeg")

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages

from fileresponse.conf import get_config
from fileresponse.derivatives.exceptions import (
    BeyondSource,
    CorruptMedia,
    DerivativeLimitExceeded,
    ProcessingError,
    SourceTooLarge,
    SpecMismatch,
)
from fileresponse.derivatives.keys import MANIFEST_NAME
from fileresponse.derivatives.pipeline import (
    Obtained,
    Streaming,
    clear_negative_cache,
    obtain_derivative,
    obtain_or_stream,
)
from fileresponse.derivatives.processors import JobInput, processor_for
from fileresponse.derivatives.processors.media import MediaInfo, MediaLimits
from fileresponse.derivatives.processors.transcode import (
    TranscodeJob,
    transcode_arguments,
)
from fileresponse.derivatives.spec import parse_spec
from tests import media as test_media

SECONDS = 30.0
#: How far a transcode's duration may be from the source's (or the clip's).
DURATION_SLACK = 0.5

# ---------------------------------------------------------------- the command, pure

LIMITS = MediaLimits("ffmpeg", 3600.0, 8000, 8000, 10**8, 60.0)
INFO = MediaInfo(30.0, 640, 360, "h264", "aac", 44100)
QUIET = ["-hide_banner", "-nostdin", "-loglevel", "error"]
STRIP = ["-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1"]
KEYS = ["-pix_fmt", "yuv420p", "-force_key_frames", "expr:gte(t,n_forced*2)"]


def job_of(spec: str, source: str = "/dev/fd/7") -> TranscodeJob:
    parsed = parse_spec(spec)
    processor = processor_for("a.mp4" if parsed.kind == "video" else "a.flac", parsed)
    output = processor.choose_output(parsed, "a", None, get_config())[0]
    job = processor.job(parsed, output, JobInput(source, descriptor=7), get_config())
    assert isinstance(job, TranscodeJob)
    return replace(job, limits=LIMITS)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "mp4 360p",
            [
                *QUIET,
                *("-i", "/dev/fd/7", "-t", "3600", *STRIP),
                *("-map", "0:v:0", "-map", "0:a:0?", "-vf", "scale=-2:360", *KEYS),
                *("-c:v", "libx264", "-preset", "veryfast", "-crf", "23"),
                *("-c:a", "aac", "-b:a", "128k"),
                *("-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "-"),
            ],
        ),
        (
            "mp4 720p crf=30 fps=15 t=10s-999999.999s",
            [
                *QUIET,
                *("-ss", "10", "-to", "999999.999", "-i", "/dev/fd/7", *STRIP),
                *("-map", "0:v:0", "-map", "0:a:0?", "-vf", "scale=-2:720,fps=15", *KEYS),
                *("-c:v", "libx264", "-preset", "veryfast", "-crf", "30"),
                *("-c:a", "aac", "-b:a", "128k"),
                *("-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "-"),
            ],
        ),
        (
            "webm",
            [
                *QUIET,
                *("-i", "/dev/fd/7", "-t", "3600", *STRIP),
                *("-map", "0:v:0", "-map", "0:a:0?", "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2"),
                *KEYS,
                *("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"),
                *("-b:v", "0", "-crf", "33", "-c:a", "libopus", "-b:a", "96k", "-f", "webm", "-"),
            ],
        ),
        (
            "mp3 128k loudnorm t=1s-2s",
            [
                *QUIET,
                *("-ss", "1", "-to", "2", "-i", "/dev/fd/7", *STRIP, "-map", "0:a:0", "-vn"),
                *("-af", "loudnorm,aresample=44100", "-c:a", "libmp3lame", "-b:a", "128k"),
                *("-f", "mp3", "-"),
            ],
        ),
        (
            "aac 96k",
            [
                *QUIET,
                *("-i", "/dev/fd/7", "-t", "3600", *STRIP, "-map", "0:a:0", "-vn"),
                *("-c:a", "aac", "-b:a", "96k", "-f", "adts", "-"),
            ],
        ),
        (
            "opus",
            [
                *QUIET,
                *("-i", "/dev/fd/7", "-t", "3600", *STRIP, "-map", "0:a:0", "-vn"),
                *("-c:a", "libopus", "-b:a", "96k", "-vbr", "constrained", "-f", "ogg", "-"),
            ],
        ),
    ],
)
def test_the_ffmpeg_arguments_of_a_spec(spec: str, expected: list[str]) -> None:
    assert transcode_arguments(job_of(spec), INFO) == expected


@pytest.mark.parametrize(
    ("source", "spec", "streams"),
    [
        ("a.mp4", "mp4 360p", True),
        ("a.mp4", "webm", True),
        ("a.mp4", "poster t=1s 100x", False),
        ("a.flac", "opus 64k", True),
        ("a.flac", "peaks 100 json", False),
        ("a.jpg", "300x200", False),
        ("a.jpg", "run=anything", True),
    ],
)
def test_a_processor_streams_per_spec(source: str, spec: str, streams: bool) -> None:
    parsed = parse_spec(spec)
    assert processor_for(source, parsed).streams(parsed) is streams


@pytest.mark.parametrize(
    ("source", "spec", "error"),
    [
        ("a.mp4", "mp4 720p crf=52", DerivativeLimitExceeded),
        ("a.mp4", "mp4 4320p", DerivativeLimitExceeded),
        ("a.mp4", "mp3 128k", SpecMismatch),
        ("a.flac", "mp4 360p", SpecMismatch),
    ],
)
def test_a_transcode_beyond_the_limits_is_400(
    source: str, spec: str, error: type[ProcessingError]
) -> None:
    parsed = parse_spec(spec)
    config = get_config(DERIVATIVES_MAX_HEIGHT=2160)
    with pytest.raises(error) as refused:
        processor_for(source, parsed).check(parsed, config)
    assert refused.value.status_code == 400


def test_a_transcode_job_is_never_run_in_a_worker() -> None:
    for source, spec in (("a.mp4", "mp4 360p"), ("a.flac", "mp3")):
        processor = processor_for(source, parse_spec(spec))
        with pytest.raises(TypeError, match="streamed by the server process"):
            processor.run(job_of(spec))


# ---------------------------------------------------------------- ffmpeg's outputs


@dataclass(frozen=True)
class Probed:
    info: MediaInfo
    #: Seconds decoded, to the end of the last stream.
    decoded: float
    size: int

    @property
    def kbits(self) -> float:
        return self.size * 8 / 1000 / self.decoded


def examine(path: Path) -> Probed:
    """Probe ``path`` and decode all of it (the duration of a stream without an index)."""
    from fileresponse.derivatives.processors.media import parse_probe

    run = subprocess.run(
        [test_media.ffmpeg(), "-hide_banner", "-nostdin", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    times = re.findall(r"time=(\d+):(\d{2}):(\d{2}(?:\.\d+)?)", run.stderr)
    hours, minutes, seconds = times[-1]
    decoded = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return Probed(parse_probe(run.stderr), decoded, path.stat().st_size)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("transcode-media")
    test_media.video(root / "clip.mp4", seconds=SECONDS, size="640x360", bitrate="300k")
    test_media.video(root / "short.mp4", seconds=3, size="320x240")
    test_media.video(root / "silent.mp4", seconds=3, audio=False)
    shutil.copy(root / "silent.mp4", root / "silent.m4a")  # a video in an audio's name
    test_media.sound(root / "tone.m4a", seconds=SECONDS)
    shutil.copy(root / "tone.m4a", root / "voice.mp4")  # sound only, in a video's name
    (root / "broken.mp4").write_bytes(test_media.corrupt())
    return root


@pytest.fixture
def in_process(settings: Any, sources: Path, tmp_path: Path) -> Iterator[Path]:
    settings.MEDIA_ROOT = str(sources)
    settings.STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "memory": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    settings.FILERESPONSE = {
        "DERIVATIVES_ROOT": str(tmp_path / "derivatives"),
        "DERIVATIVES_LOCK_DIR": str(tmp_path / "locks"),
        "DERIVATIVES_SOURCE_STORAGES": ["default", "memory"],
    }
    clear_negative_cache()
    yield tmp_path / "derivatives"
    clear_negative_cache()


def committed(root: Path) -> list[Path]:
    if not root.exists():
        return []
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and ".locks" not in path.parts and path.name != MANIFEST_NAME
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("source", "spec", "codec", "height", "duration", "kbits"),
    [
        ("clip.mp4", "mp4 360p", "h264", 360, SECONDS, None),
        ("clip.mp4", "mp4 240p crf=30 fps=15 t=10s-15s", "h264", 240, 5.0, None),
        ("clip.mp4", "webm 360p", "vp9", 360, SECONDS, None),
        ("tone.m4a", "mp3 128k", "mp3", None, SECONDS, 128),
        ("tone.m4a", "aac 96k", "aac", None, SECONDS, 96),
        ("tone.m4a", "opus 64k", "opus", None, SECONDS, 64),
        ("tone.m4a", "mp3 64k loudnorm t=10s-15s", "mp3", None, 5.0, 64),
    ],
)
async def test_a_transcode_is_what_its_spec_says(
    in_process: Path,
    source: str,
    spec: str,
    codec: str,
    height: int | None,
    duration: float,
    kbits: int | None,
) -> None:
    obtained = await obtain_derivative(default_storage, "default", source, parse_spec(spec))
    obtained.stored.source.close()
    assert obtained.generated
    probed = examine(in_process / obtained.stored.name)
    if height is not None:
        assert probed.info.video_codec == codec
        assert probed.info.height == height
        assert probed.info.width == height * 16 // 9
        assert probed.info.audio_codec == ("aac" if codec == "h264" else "opus")
    else:
        assert probed.info.video_codec is None
        assert probed.info.audio_codec == codec
        assert probed.info.sample_rate == 48000
    assert probed.decoded == pytest.approx(duration, abs=DURATION_SLACK)
    if kbits is not None:
        assert kbits * 0.6 < probed.kbits < kbits * 1.15, probed


async def test_a_remote_source_is_spooled_then_transcoded(in_process: Path, sources: Path) -> None:
    memory = storages["memory"]
    memory.save("short.mp4", ContentFile((sources / "short.mp4").read_bytes()))
    streaming = await obtain_or_stream(memory, "memory", "short.mp4", parse_spec("mp4 120p"))
    assert isinstance(streaming, Streaming)
    assert streaming.output.content_type == "video/mp4"
    body = b"".join([chunk async for chunk in streaming.body])
    (in_process.parent / "out.mp4").write_bytes(body)
    probed = examine(in_process.parent / "out.mp4")
    assert (probed.info.video_codec, probed.info.height) == ("h264", 120)
    stored = await obtain_or_stream(memory, "memory", "short.mp4", parse_spec("mp4 120p"))
    assert isinstance(stored, Obtained)
    stored.stored.source.close()
    assert (in_process / stored.stored.name).read_bytes() == body


@pytest.mark.parametrize(
    ("source", "spec", "error", "reason"),
    [
        ("broken.mp4", "mp4 360p", CorruptMedia, "not a media file"),
        ("voice.mp4", "mp4 360p", CorruptMedia, "no video stream"),
        ("silent.m4a", "mp3 128k", CorruptMedia, "no audio stream"),
        ("short.mp4", "mp4 120p t=5s-8s", BeyondSource, "past the end"),
    ],
)
async def test_a_source_that_cannot_make_it_is_422_before_any_run(
    in_process: Path, source: str, spec: str, error: type[ProcessingError], reason: str
) -> None:
    with pytest.raises(error, match=reason) as refused:
        await obtain_or_stream(default_storage, "default", source, parse_spec(spec))
    assert refused.value.status_code == 422
    assert committed(in_process) == []


async def test_a_source_over_the_duration_limit_is_422(in_process: Path, settings: Any) -> None:
    settings.FILERESPONSE = {**settings.FILERESPONSE, "DERIVATIVES_MAX_DURATION": 10}
    for source, spec in (("clip.mp4", "webm 360p"), ("tone.m4a", "opus")):
        with pytest.raises(SourceTooLarge, match="too long"):
            await obtain_or_stream(default_storage, "default", source, parse_spec(spec))
    assert committed(in_process) == []
