"""Video and audio transcodes: one ffmpeg command, streamed to clients while it runs.

``mp4`` is H.264 + AAC written as fragmented MP4 (an empty ``moov``, then a
``moof`` per key frame, one every 2 s): the bytes ffmpeg writes to its pipe
are the file committed, and they play and seek in browsers and in ffmpeg over
HTTP ranges; moving a regular index to the front (faststart) would take a
second pass before the cache held anything. ``webm`` is VP9 + Opus; ``mp3``,
``aac`` (ADTS) and ``opus`` (Ogg) are audio. The source is probed first (no
stream of the kind, too long, a clip past its end: a ``4xx``, no run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from fileresponse.derivatives.exceptions import (
    BeyondSource,
    CorruptMedia,
    DerivativeLimitExceeded,
    UnsupportedFormat,
)

from .base import Command, JobInput, Output, Processor
from .media import MAX_MEMORY, MediaInfo, MediaLimits, check_box, check_kind, missing_library, probe

if TYPE_CHECKING:
    from fileresponse.conf import Config
    from fileresponse.derivatives.spec import Spec

__all__ = [
    "OUTPUTS",
    "TranscodeJob",
    "check_transcode",
    "transcode_arguments",
    "transcode_command",
    "transcode_job",
]

OUTPUTS: Final = {
    "mp4": Output("mp4", "mp4", "video/mp4"),
    "webm": Output("webm", "webm", "video/webm"),
    "mp3": Output("mp3", "mp3", "audio/mpeg"),
    "aac": Output("aac", "aac", "audio/aac"),
    "opus": Output("opus", "opus", "audio/ogg"),
}
#: The ``crf=`` of a video transcode without one, and the largest its encoder takes.
DEFAULT_CRF: Final = {"mp4": 23, "webm": 33}
MAX_CRF: Final = {"mp4": 51, "webm": 63}
#: kbit/s of an audio transcode without ``NNNk``, and of a video's sound track.
DEFAULT_BITRATE: Final = {"mp3": 128, "aac": 128, "opus": 96}
VIDEO_AUDIO: Final = {"mp4": ("aac", "128k"), "webm": ("libopus", "96k")}
#: Seconds between key frames (the fragments of an mp4, the seek points).
KEY_FRAME_INTERVAL: Final = 2

_AUDIO_CODECS: Final = {
    "mp3": ("libmp3lame", "mp3"),
    "aac": ("aac", "adts"),
    "opus": ("libopus", "ogg"),
}
_QUIET: Final = ("-hide_banner", "-nostdin", "-loglevel", "error")


@dataclass(frozen=True, slots=True)
class TranscodeJob:
    """A transcode of the source at ``path`` (``/dev/fd/N`` of ``descriptors``) to a format."""

    kind: Literal["video", "audio"]
    output_format: str
    limits: MediaLimits
    path: str
    descriptors: tuple[int, ...] = ()
    lines: int | None = None
    crf: int | None = None
    fps: int | None = None
    bitrate: int | None = None
    loudnorm: bool = False
    clip: tuple[float, float] | None = None

    @property
    def processor(self) -> str:
        return f"{__package__}.{self.kind}.{self.kind.capitalize()}Processor"


def check_transcode(spec: Spec, config: Config) -> None:
    """``400`` for a height over ``DERIVATIVES_MAX_HEIGHT`` or a ``crf=`` the encoder refuses."""
    if spec.lines is not None and spec.lines > config.DERIVATIVES_MAX_HEIGHT:
        raise DerivativeLimitExceeded(
            f"height {spec.lines} over the limit {config.DERIVATIVES_MAX_HEIGHT}"
        )
    if spec.crf is not None and spec.format in MAX_CRF and spec.crf > MAX_CRF[spec.format]:
        raise DerivativeLimitExceeded(
            f"crf={spec.crf} over {MAX_CRF[spec.format]} for {spec.format}"
        )


def transcode_job(
    kind: Literal["video", "audio"], spec: Spec, output: Output, source: JobInput, config: Config
) -> TranscodeJob:
    if source.path is None:
        raise ValueError("a transcode job needs its source as a file (see streaming)")
    return TranscodeJob(
        kind=kind,
        output_format=output.format,
        limits=MediaLimits.from_config(config),
        path=source.path,
        descriptors=() if source.descriptor is None else (source.descriptor,),
        lines=spec.lines,
        crf=spec.crf,
        fps=spec.fps,
        bitrate=spec.bitrate,
        loudnorm=spec.loudnorm,
        clip=spec.clip,
    )


def transcode_command(job: TranscodeJob) -> Command:
    """Probe the source, check it, and give the ffmpeg command (blocking: the probe runs)."""
    limits = job.limits
    info = probe(limits.ffmpeg, job.path, pass_fds=job.descriptors, timeout=limits.timeout)
    _check_source(job, info)
    # Only the address space is limited here: a CPU-time limit would count every
    # encoder thread; the wall-clock timeout of the run bounds it.
    wrapper = f'ulimit -v {MAX_MEMORY // 1024}; exec "$0" "$@"'
    arguments = transcode_arguments(job, info)
    return Command(("/bin/sh", "-c", wrapper, limits.ffmpeg, *arguments), name="ffmpeg")


def _check_source(job: TranscodeJob, info: MediaInfo) -> None:
    if job.kind == "video" and info.video_codec is None:
        raise CorruptMedia("source has no video stream")
    if job.kind == "audio" and info.audio_codec is None:
        raise CorruptMedia("source has no audio stream")
    job.limits.check_duration(info)
    if job.kind == "video":
        job.limits.check_frame(info)
    if job.clip is not None and info.duration is not None and job.clip[0] >= info.duration:
        raise BeyondSource(
            f"the clip starts at {job.clip[0]:g}s, past the end of the source ({info.duration:g}s)"
        )


def transcode_arguments(job: TranscodeJob, info: MediaInfo) -> list[str]:
    """ffmpeg's arguments (after the program) for ``job`` of a source probed as ``info``; pure."""
    arguments = [*_QUIET]
    if job.clip is not None:
        start, end = job.clip
        arguments += ["-ss", _seconds(start), "-to", _seconds(end)]
    arguments += ["-i", job.path]
    if job.clip is None:
        arguments += ["-t", _seconds(job.limits.max_duration)]
    arguments += ["-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1"]
    if job.kind == "video":
        return arguments + _video(job)
    return arguments + _audio(job, info)


def _seconds(value: float) -> str:
    """``10``, ``15.5``, ``999999.999``: to the millisecond, never in exponent form."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _video(job: TranscodeJob) -> list[str]:
    output_format = job.output_format
    if output_format not in VIDEO_AUDIO:
        raise UnsupportedFormat(f"unsupported video format: {output_format}")
    scale = "scale=trunc(iw/2)*2:trunc(ih/2)*2" if job.lines is None else f"scale=-2:{job.lines}"
    filters = [scale, *([f"fps={job.fps}"] if job.fps is not None else [])]
    crf = str(job.crf if job.crf is not None else DEFAULT_CRF[output_format])
    audio_codec, audio_bitrate = VIDEO_AUDIO[output_format]
    arguments = [
        *("-map", "0:v:0", "-map", "0:a:0?", "-vf", ",".join(filters)),
        *("-pix_fmt", "yuv420p", "-force_key_frames", f"expr:gte(t,n_forced*{KEY_FRAME_INTERVAL})"),
    ]
    if output_format == "mp4":
        arguments += ["-c:v", "libx264", "-preset", "veryfast", "-crf", crf]
    else:
        arguments += ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"]
        arguments += ["-b:v", "0", "-crf", crf]
    arguments += ["-c:a", audio_codec, "-b:a", audio_bitrate]
    if output_format == "mp4":
        arguments += ["-movflags", "frag_keyframe+empty_moov+default_base_moof"]
    return [*arguments, "-f", output_format, "-"]


def _audio(job: TranscodeJob, info: MediaInfo) -> list[str]:
    output_format = job.output_format
    if output_format not in _AUDIO_CODECS:
        raise UnsupportedFormat(f"unsupported audio format: {output_format}")
    codec, container = _AUDIO_CODECS[output_format]
    bitrate = job.bitrate if job.bitrate is not None else DEFAULT_BITRATE[output_format]
    arguments = ["-map", "0:a:0", "-vn"]
    if job.loudnorm:
        # loudnorm works (and writes) at 192 kHz: back to the source's rate.
        arguments += ["-af", f"loudnorm,aresample={info.sample_rate or 48000}"]
    arguments += ["-c:a", codec, "-b:a", f"{bitrate}k"]
    if codec == "libopus":  # unconstrained, a plain tone takes 30 % more than asked
        arguments += ["-vbr", "constrained"]
    return [*arguments, "-f", container, "-"]


class FFmpegProcessor(Processor):
    """What the video and audio processors share: ffmpeg, the kind check, streamed transcodes.

    A transcode (``mp4 360p``, ``mp3 128k``) streams; the other operations run
    in the executor. ``container`` is the transcode format of a spec without one.
    """

    container: ClassVar[str]

    def version(self, config: Config) -> str:
        return "ffmpeg-1"

    def unavailable(self, config: Config) -> str | None:
        return missing_library(self.kind, config)

    def streams(self, spec: Spec) -> bool:
        return spec.operation == "transcode"

    def check(self, spec: Spec, config: Config) -> None:
        check_kind(spec, self.kind)
        if spec.operation == "transcode":
            check_transcode(spec, config)
        else:
            check_box(spec, config)

    def transcode_output(self, spec: Spec, config: Config) -> tuple[Output, bool]:
        return self.output(spec.format or self.container, config), False

    def command(self, job: Any) -> Command:
        """The ffmpeg command of a transcode, once its source is probed and checked."""
        return transcode_command(job)
