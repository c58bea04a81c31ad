"""The ``audio`` processor: a waveform picture, peaks for players and transcodes, with ffmpeg.

- ``waveform 800x120 png``: ffmpeg's ``showwavespic`` filter draws the whole
  source (mixed to mono) in the box, on a transparent background.
- ``peaks 800 json``: the source decoded to mono 8 kHz 16-bit PCM, cut into
  800 equal spans, each span's lowest and highest sample as floats in -1..1:
  ``{"points": 800, "duration": 3.0, "peaks": [[-0.5, 0.5], ...]}``.

The source is probed and checked against ``DERIVATIVES_MAX_DURATION`` first,
and no decoding goes past that duration. Transcodes (``mp3 128k``) stream from
the server process (:mod:`.transcode`).
"""

from __future__ import annotations

import json
import sys
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Final, Literal

from fileresponse.derivatives.exceptions import (
    CorruptMedia,
    ProcessingUnavailable,
    UnsupportedFormat,
)

from .base import JobInput, Output
from .media import (
    FFmpegRun,
    MediaLimits,
    probed_input,
    remaining,
    run_ffmpeg,
)
from .transcode import (
    OUTPUTS,
    FFmpegProcessor,
    TranscodeJob,
    transcode_job,
)

if TYPE_CHECKING:
    from fileresponse.conf import Config
    from fileresponse.derivatives.spec import Spec

__all__ = ["AudioJob", "AudioProcessor", "AudioResult", "peaks"]

#: The sample rate of the PCM peaks are computed from.
PEAKS_RATE: Final = 8000
#: The colour of waveforms (transparent around it).
WAVEFORM_COLOR: Final = "0x4a5568"
_OUTPUTS: Final = {
    "png": Output("png", "png", "image/png"),
    "json": Output("json", "json", "application/json"),
    **{name: OUTPUTS[name] for name in ("mp3", "aac", "opus")},
}
_FORMATS: Final = {"waveform": "png", "peaks": "json"}


@dataclass(frozen=True, slots=True)
class AudioJob:
    """A waveform of ``width`` x ``height``, or ``points`` peaks, of an audio source."""

    operation: Literal["waveform", "peaks"]
    limits: MediaLimits
    width: int | None = None
    height: int | None = None
    points: int | None = None
    path: str | None = None
    data: bytes | None = None
    identity: tuple[int, int] | None = None

    @property
    def processor(self) -> str:
        return f"{__name__}.AudioProcessor"


@dataclass(frozen=True, slots=True)
class AudioResult:
    data: bytes
    summary: str


def peaks(samples: array[int], points: int) -> list[list[float]]:
    """``points`` ``[min, max]`` pairs of 16-bit ``samples``, scaled to -1..1.

    Span ``i`` holds samples ``i*n//points`` up to ``(i+1)*n//points``; with
    fewer samples than points, a span is the one sample at its start.
    """
    count = len(samples)
    if count == 0:
        return [[0.0, 0.0] for _ in range(points)]
    pairs = []
    for index in range(points):
        start = index * count // points
        span = samples[start : max((index + 1) * count // points, start + 1)]
        pairs.append([round(min(span) / 32768, 4), round(max(span) / 32768, 4)])
    return pairs


class AudioProcessor(FFmpegProcessor):
    """Audio files: ``waveform WxH png``, ``peaks N json`` (in a worker), transcodes (streamed)."""

    kind = "audio"
    container = "mp3"
    suffixes: ClassVar[frozenset[str]] = frozenset(
        {".mp3", ".m4a", ".aac", ".wav", ".flac", ".ogg", ".oga", ".opus"}
    )

    def choose_output(
        self, spec: Spec, source_name: str, accept: str | None, config: Config
    ) -> tuple[Output, bool]:
        if spec.operation == "transcode":
            return self.transcode_output(spec, config)
        return self.output(spec.format or _FORMATS[spec.operation or "peaks"], config), False

    def output(self, output_format: str, config: Config) -> Output:
        try:
            return _OUTPUTS[output_format]
        except KeyError:
            raise UnsupportedFormat(f"unsupported format: {output_format}") from None

    def output_choices(self, spec: Spec, source_name: str, config: Config) -> list[Output]:
        return [self.choose_output(spec, source_name, None, config)[0]]

    def job(
        self, spec: Spec, output: Output, source: JobInput, config: Config
    ) -> AudioJob | TranscodeJob:
        operation = spec.operation
        if operation == "transcode":
            return transcode_job("audio", spec, output, source, config)
        if operation != "waveform" and operation != "peaks":
            raise UnsupportedFormat(f"unsupported audio operation: {operation}")
        return AudioJob(
            operation=operation,
            limits=MediaLimits.from_config(config),
            width=spec.width,
            height=spec.height,
            points=spec.points,
            path=source.path,
            data=source.data,
            identity=source.identity,
        )

    @staticmethod
    def run(job: AudioJob | TranscodeJob) -> AudioResult:
        if not isinstance(job, AudioJob):
            raise TypeError("a transcode is streamed by the server process, not run in a worker")
        limits = job.limits
        with probed_input(job) as (source, descriptors, info, deadline):
            if info.audio_codec is None:
                raise CorruptMedia("source has no audio stream")
            limits.check_duration(info)
            decode = [
                *("-hide_banner", "-nostdin", "-loglevel", "error", "-i", source),
                *("-t", f"{limits.max_duration:g}", "-vn", "-sn", "-dn"),
            ]
            if job.operation == "waveform":
                assert job.width is not None
                assert job.height is not None
                size = f"{job.width}x{job.height}"
                drawing = f"showwavespic=s={size}:split_channels=0:colors={WAVEFORM_COLOR}"
                output = [
                    *("-filter_complex", f"[0:a:0]aformat=channel_layouts=mono,{drawing}[wave]"),
                    *("-map", "[wave]", "-frames:v", "1", "-f", "image2pipe", "-vcodec", "png"),
                    "-",
                ]
            else:
                output = [
                    *("-map", "0:a:0", "-ac", "1", "-ar", str(PEAKS_RATE)),
                    *("-f", "s16le", "-acodec", "pcm_s16le", "-"),
                ]
            run = run_ffmpeg(
                limits.ffmpeg, decode + output, timeout=remaining(deadline), pass_fds=descriptors
            )
        _check_run(run)
        if job.operation == "waveform":
            return AudioResult(run.stdout, f"waveform {job.width}x{job.height} png")
        assert job.points is not None
        samples = array("h")
        samples.frombytes(run.stdout[: len(run.stdout) // 2 * 2])
        if sys.byteorder == "big":
            samples.byteswap()
        duration = round(len(samples) / PEAKS_RATE, 3)
        document = {"points": job.points, "duration": duration, "peaks": peaks(samples, job.points)}
        data = json.dumps(document, separators=(",", ":")).encode()
        return AudioResult(data, f"peaks {job.points} of {duration:g}s json")


def _check_run(run: FFmpegRun) -> None:
    if run.returncode < 0:
        raise ProcessingUnavailable("ffmpeg was stopped (CPU or memory limit)")
    if run.returncode != 0 or not run.stdout:
        reason = run.stderr.strip().splitlines()[-1:] or ["nothing decoded"]
        raise CorruptMedia(f"source audio cannot be decoded: {reason[0][:80]}")
