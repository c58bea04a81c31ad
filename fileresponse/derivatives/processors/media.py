"""What the media processors share: ffmpeg, the probe, bounded runs and still-image outputs.

ffmpeg is ``FILERESPONSE["FFMPEG"]`` or the binary of the ``imageio-ffmpeg`` wheel
(``fileresponse[video]``, ``fileresponse[audio]``), which has no ffprobe: a source
is probed by parsing what ``ffmpeg -i`` writes to stderr (:func:`parse_probe`,
pure). Each run has a wall-clock timeout, its own process group (all of it is
killed on timeout) and CPU-time and address-space limits.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from django.core.exceptions import ImproperlyConfigured

from fileresponse.conf import per_settings
from fileresponse.derivatives.exceptions import (
    CorruptMedia,
    ProcessingUnavailable,
    SourceTooLarge,
    SpecMismatch,
    UnsupportedFormat,
)
from fileresponse.http.headers import accepted_types

from .base import Output, check_box, open_checked

if TYPE_CHECKING:
    from fileresponse.conf import Config
    from fileresponse.derivatives.spec import Spec

__all__ = [
    "FFmpegRun",
    "MediaInfo",
    "MediaLimits",
    "check_box",
    "check_kind",
    "ffmpeg_path",
    "image_output",
    "image_output_choices",
    "media_input",
    "missing_libraries",
    "missing_library",
    "open_checked",
    "parse_probe",
    "probe",
    "remaining",
    "run_ffmpeg",
    "still_output",
]

#: Address space of one ffmpeg run: generous (decoder threads reserve a lot), but bounded.
MAX_MEMORY: Final = 4 * 1024**3
#: Seconds a probe may take at most (it reads headers only).
PROBE_TIMEOUT: Final = 10.0
_IMAGE_EXTENSIONS: Final = {"jpeg": "jpg", "png": "png", "webp": "webp", "avif": "avif"}

_DURATION = re.compile(r"^\s*Duration: (?:(\d+):(\d{2}):(\d{2}(?:\.\d+)?)|N/A)", re.MULTILINE)
_STREAM = re.compile(r"^\s*Stream #\d+:\d+\S*: (Video|Audio): (\w+)(.*)$", re.MULTILINE)
_FRAME_SIZE = re.compile(r"(?<![0-9A-Za-z])(\d{1,5})x(\d{1,5})(?![0-9A-Za-z])")
_SAMPLE_RATE = re.compile(r"(?<![0-9])(\d{1,6}) Hz")


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What a probe found: ``None`` for what the source does not say (or has not)."""

    duration: float | None
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None
    sample_rate: int | None


@dataclass(frozen=True, slots=True)
class MediaLimits:
    """The limits of one media job, from the settings (plain values: jobs are pickled)."""

    ffmpeg: str
    max_duration: float
    max_width: int
    max_height: int
    max_source_pixels: int
    #: Seconds the whole job may take (kept below ``DERIVATIVES_TIMEOUT``, whose end
    #: kills the worker and would leave ffmpeg to its CPU limit).
    timeout: float

    @classmethod
    def from_config(cls, config: Config) -> MediaLimits:
        return cls(
            ffmpeg=ffmpeg_path(config),
            max_duration=float(config.DERIVATIVES_MAX_DURATION),
            max_width=config.DERIVATIVES_MAX_WIDTH,
            max_height=config.DERIVATIVES_MAX_HEIGHT,
            max_source_pixels=config.DERIVATIVES_MAX_SOURCE_PIXELS,
            timeout=max(1.0, config.DERIVATIVES_TIMEOUT * 0.9),
        )

    def check_duration(self, info: MediaInfo) -> None:
        """``SourceTooLarge`` for a source longer than ``DERIVATIVES_MAX_DURATION``."""
        if info.duration is not None and info.duration > self.max_duration:
            raise SourceTooLarge(
                f"source too long: {info.duration:g}s (limit {self.max_duration:g}s)"
            )

    def check_frame(self, info: MediaInfo) -> None:
        """``SourceTooLarge`` for frames beyond ``DERIVATIVES_MAX_WIDTH``/``_HEIGHT``/pixels."""
        if info.width is None or info.height is None:
            return
        if (
            info.width > self.max_width
            or info.height > self.max_height
            or info.width * info.height > self.max_source_pixels
        ):
            raise SourceTooLarge(
                f"video frames too large: {info.width}x{info.height} "
                f"(limit {self.max_width}x{self.max_height})"
            )


@dataclass(frozen=True, slots=True)
class FFmpegRun:
    returncode: int
    stdout: bytes
    stderr: str


def ffmpeg_path(config: Config) -> str:
    """``FILERESPONSE["FFMPEG"]``, else the ``imageio-ffmpeg`` binary; else ImproperlyConfigured."""
    if config.FFMPEG:
        return config.FFMPEG
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ImproperlyConfigured(
            "video and audio derivatives need ffmpeg: pip install 'fileresponse[video]' "
            "(or set FILERESPONSE['FFMPEG'] to its path)"
        ) from None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as error:
        raise ImproperlyConfigured(f"imageio-ffmpeg finds no ffmpeg binary: {error}") from None


def parse_probe(stderr: str) -> MediaInfo:
    """The :class:`MediaInfo` in the stderr of ``ffmpeg -hide_banner -i SOURCE``.

    ``CorruptMedia`` when ffmpeg found no container (no ``Duration:`` line):
    random bytes, a truncated header. The first video and the first audio
    stream count; a still picture attached to an audio file is no video.
    """
    duration_match = _DURATION.search(stderr)
    if duration_match is None:
        raise CorruptMedia("source is not a media file ffmpeg can read")
    duration = None
    if duration_match.group(1) is not None:
        hours, minutes, seconds = duration_match.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    width = height = sample_rate = None
    video_codec = audio_codec = None
    for stream in _STREAM.finditer(stderr):
        media, codec, rest = stream.groups()
        if media == "Video" and video_codec is None and "(attached pic)" not in rest:
            video_codec = codec
            if (size := _FRAME_SIZE.search(rest)) is not None:
                width, height = int(size.group(1)), int(size.group(2))
        elif media == "Audio" and audio_codec is None:
            audio_codec = codec
            if (rate := _SAMPLE_RATE.search(rest)) is not None:
                sample_rate = int(rate.group(1))
    return MediaInfo(duration, width, height, video_codec, audio_codec, sample_rate)


def probe(ffmpeg: str, source: str, *, pass_fds: Sequence[int] = (), timeout: float) -> MediaInfo:
    """Probe ``source`` (a path) with ``ffmpeg -i``; ``CorruptMedia`` if it is no media."""
    run = run_ffmpeg(
        ffmpeg,
        ["-hide_banner", "-nostdin", "-i", source],
        timeout=min(timeout, PROBE_TIMEOUT),
        pass_fds=pass_fds,
    )
    return parse_probe(run.stderr)


def run_ffmpeg(
    ffmpeg: str,
    arguments: Sequence[str],
    *,
    timeout: float,
    pass_fds: Sequence[int] = (),
    max_memory: int = MAX_MEMORY,
) -> FFmpegRun:
    """Run ffmpeg to its end, within ``timeout`` seconds (``ProcessingUnavailable`` beyond).

    The run has its own session (so its process group is killed whole on
    timeout) and the ``RLIMIT_CPU`` (``timeout``) and ``RLIMIT_AS``
    (``max_memory``) limits, set by ``/bin/sh``'s ``ulimit`` before it execs
    ffmpeg: no Python runs between fork and exec, which is safe in a threaded
    process (the ``thread`` executor) where ``preexec_fn`` is not.
    """
    limits = f"ulimit -t {max(1, int(timeout) + 1)}; ulimit -v {max_memory // 1024}; "
    command = ["/bin/sh", "-c", limits + 'exec "$0" "$@"', ffmpeg, *arguments]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=tuple(pass_fds),
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise ProcessingUnavailable(f"ffmpeg took longer than {timeout:g}s") from None
    except BaseException:
        _kill_group(process)
        raise
    return FFmpegRun(process.returncode, stdout, stderr.decode("utf-8", "replace"))


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def remaining(deadline: float) -> float:
    """Seconds left until ``deadline`` (``time.monotonic``); ``ProcessingUnavailable`` if none."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise ProcessingUnavailable("processing took too long")
    return left


@contextlib.contextmanager
def probed_input(
    job: Any,
) -> Iterator[tuple[str, tuple[int, ...], MediaInfo, float]]:
    """A worker job's source as ffmpeg's input, probed: ``(input, fds, info, deadline)``.

    ``job`` has ``limits``, ``path``, ``data`` and ``identity``; the deadline
    (``time.monotonic``) ends the whole run at ``limits.timeout``.
    """
    limits = job.limits
    deadline = time.monotonic() + limits.timeout
    with media_input(job.path, job.data, job.identity) as (source, descriptors):
        info = probe(limits.ffmpeg, source, pass_fds=descriptors, timeout=limits.timeout)
        yield source, tuple(descriptors), info, deadline


@contextlib.contextmanager
def media_input(
    path: str | None, data: bytes | None, identity: tuple[int, int] | None
) -> Iterator[tuple[str, tuple[int, ...]]]:
    """``(what ffmpeg opens, the descriptors to pass it)`` for a job's source.

    A local file is opened and checked here (``SourceChanged`` if it is not
    the one stat'ed), and ffmpeg opens that very file through ``/dev/fd/N``,
    never the name again. The bytes of a remote source go to a temporary
    file (ffmpeg seeks in MP4s), removed afterwards.
    """
    if path is not None:
        descriptor = open_checked(path, identity)
        try:
            if os.path.isdir("/dev/fd"):
                yield f"/dev/fd/{descriptor}", (descriptor,)
            else:  # pragma: no cover (every supported system has /dev/fd)
                yield path, ()
        finally:
            os.close(descriptor)
        return
    if data is None:
        raise ValueError("a media job needs a path or data")
    with tempfile.NamedTemporaryFile(prefix="fileresponse-media-") as copy:
        copy.write(data)
        copy.flush()
        yield copy.name, ()


def missing_libraries(config: Config) -> list[str]:
    """Why each media kind cannot work here (for the system check ``fileresponse.W030``)."""
    problems = [problem for problem in [missing_library("pdf", config)] if problem is not None]
    if (ffmpeg := _missing_ffmpeg(config, "video and audio", "video")) is not None:
        problems.append(ffmpeg)
    return problems


@per_settings("FILERESPONSE")
def _libraries() -> dict[tuple[str, str | None], str | None]:
    """What :func:`missing_library` found, until the settings change (asked per request)."""
    return {}


def missing_library(kind: str, config: Config) -> str | None:
    """Why derivatives of ``kind`` (``pdf``, ``video``, ``audio``) cannot be made here, or ``None``.

    The reason names the extra to install (``pip install 'fileresponse[video]'``).
    Looked up once per kind and ``FFMPEG`` (no file system access per request).
    """
    known = _libraries()
    key = (kind, config.FFMPEG)
    if key not in known:
        known[key] = _look_for_library(kind, config)
    return known[key]


def _look_for_library(kind: str, config: Config) -> str | None:
    if kind == "pdf":
        import importlib.util

        if importlib.util.find_spec("pypdfium2") is None:
            return "pdf derivatives need pypdfium2: pip install 'fileresponse[pdf]'"
        return None
    return _missing_ffmpeg(config, kind, kind)


def _missing_ffmpeg(config: Config, kinds: str, extra: str) -> str | None:
    if config.FFMPEG:
        if not (os.path.isfile(config.FFMPEG) and os.access(config.FFMPEG, os.X_OK)):
            return (
                f"{kinds} derivatives need ffmpeg: FFMPEG {config.FFMPEG!r} "
                "is not an executable file"
            )
        return None
    import importlib.util

    if importlib.util.find_spec("imageio_ffmpeg") is None:
        return (
            f"{kinds} derivatives need ffmpeg: pip install 'fileresponse[{extra}]' "
            "(or set FFMPEG to its path)"
        )
    return None


# ---------------------------------------------------------------- checks and still-image outputs


#: What each media kind's specs look like, for the reason of a ``SpecMismatch``.
_SPEC_EXAMPLES: Final = {
    "pdf": "page=...",
    "video": "poster t=..., mp4, webm",
    "audio": "peaks, waveform, mp3, aac, opus",
}


def check_kind(spec: Spec, kind: str) -> None:
    """``SpecMismatch`` (``400``) for a spec of another kind than the source's."""
    if spec.kind != kind:
        raise SpecMismatch(
            f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} source takes {kind} specs"
            f" ({_SPEC_EXAMPLES[kind]}), not {spec.kind}"
        )


def _still_formats(config: Config) -> frozenset[str]:
    """The formats of pages and posters: Pillow's (they are finished by the Pillow helpers)."""
    from .imaging import get_engine

    return get_engine("pillow").output_formats()


def _still(output_format: str, config: Config) -> Output:
    from .jobs import CONTENT_TYPES

    if output_format not in _IMAGE_EXTENSIONS or output_format not in _still_formats(config):
        raise UnsupportedFormat(f"unsupported format: {output_format}")
    return Output(output_format, _IMAGE_EXTENSIONS[output_format], CONTENT_TYPES[output_format])


def image_output(
    spec: Spec, accept: str | None, config: Config, *, default: str
) -> tuple[Output, bool]:
    """The image output of a page or a poster: as for images, with ``default`` for no format.

    ``auto`` takes the first of ``DERIVATIVES_AUTO_FORMATS`` that ``Accept``
    names explicitly, else ``default``.
    """
    if spec.format == "auto":
        supported = _still_formats(config)
        accepted = accepted_types(accept or "")
        for candidate in config.DERIVATIVES_AUTO_FORMATS:
            if candidate in supported and f"image/{candidate}" in accepted:
                return _still(candidate, config), True
        return _still(default, config), True
    return _still(spec.format or default, config), False


def image_output_choices(spec: Spec, config: Config, *, default: str) -> list[Output]:
    """Every output ``image_output`` may choose for ``spec``."""
    if spec.format != "auto":
        return [image_output(spec, None, config, default=default)[0]]
    supported = _still_formats(config)
    names = [name for name in config.DERIVATIVES_AUTO_FORMATS if name in supported]
    return [_still(name, config) for name in [*names, *([default] * (default not in names))]]


def still_output(output_format: str, config: Config) -> Output:
    """The image output of this name (``UnsupportedFormat`` if Pillow does not write it)."""
    return _still(output_format, config)
