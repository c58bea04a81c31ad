"""The ``video`` processor: a poster frame (``poster t=2s 320x180 jpeg``) and transcodes.

The source is probed (:func:`.media.probe`) and checked against
``DERIVATIVES_MAX_DURATION`` and the frame limits before any frame is
decoded; ffmpeg seeks (``-ss`` before ``-i``: to the key frame before, then
decodes up to the time) and writes one frame as PNG, which the Pillow helpers
of :mod:`.image` cut, scale and encode like any image. Transcodes (``mp4 360p``)
stream from the server process (:mod:`.transcode`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Final

from fileresponse.derivatives.exceptions import (
    BeyondSource,
    CorruptMedia,
    ProcessingUnavailable,
)

from .base import JobInput, Output
from .media import (
    MediaInfo,
    MediaLimits,
    image_output,
    image_output_choices,
    probed_input,
    remaining,
    run_ffmpeg,
    still_output,
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

    from .jobs import ImageResult

__all__ = ["PosterJob", "VideoProcessor", "seek_time"]

DEFAULT_FORMAT: Final = "jpeg"
#: How far before the end a ``t=100%`` poster is taken (the last frame starts before it).
_END_MARGIN: Final = 0.1


@dataclass(frozen=True, slots=True)
class PosterJob:
    """One frame of a video at ``seek`` seconds or ``seek_fraction`` of its duration."""

    spec: Spec
    output_format: str
    limits: MediaLimits
    seek: float | None = None
    seek_fraction: float | None = None
    path: str | None = None
    data: bytes | None = None
    identity: tuple[int, int] | None = None

    @property
    def processor(self) -> str:
        return f"{__name__}.VideoProcessor"


def seek_time(seek: float | None, seek_fraction: float | None, duration: float | None) -> float:
    """The time of the poster frame, in seconds; ``BeyondSource`` past the end."""
    if seek_fraction is not None:
        if duration is None:
            raise BeyondSource("the video's duration is unknown: give t= in seconds")
        return max(0.0, min(seek_fraction * duration, duration - _END_MARGIN))
    at = seek or 0.0
    if duration is not None and at >= duration:
        raise BeyondSource(f"t={at:g}s is past the end of the video ({duration:g}s)")
    return at


class VideoProcessor(FFmpegProcessor):
    """Videos: a poster frame as an image (in a worker), transcodes (streamed)."""

    kind = "video"
    container = "mp4"
    suffixes: ClassVar[frozenset[str]] = frozenset(
        {".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".ogv"}
    )

    def preload(self, config: Config) -> Sequence[str]:
        return [f"{__package__}.image"]

    def choose_output(
        self, spec: Spec, source_name: str, accept: str | None, config: Config
    ) -> tuple[Output, bool]:
        if spec.operation == "transcode":
            return self.transcode_output(spec, config)
        return image_output(spec, accept, config, default=DEFAULT_FORMAT)

    def output(self, output_format: str, config: Config) -> Output:
        if output_format in ("mp4", "webm"):
            return OUTPUTS[output_format]
        return still_output(output_format, config)

    def output_choices(self, spec: Spec, source_name: str, config: Config) -> list[Output]:
        if spec.operation == "transcode":
            return [self.choose_output(spec, source_name, None, config)[0]]
        return image_output_choices(spec, config, default=DEFAULT_FORMAT)

    def job(
        self, spec: Spec, output: Output, source: JobInput, config: Config
    ) -> PosterJob | TranscodeJob:
        if spec.operation == "transcode":
            return transcode_job("video", spec, output, source, config)
        return PosterJob(
            spec=spec,
            output_format=output.format,
            limits=MediaLimits.from_config(config),
            seek=spec.seek,
            seek_fraction=spec.seek_fraction,
            path=source.path,
            data=source.data,
            identity=source.identity,
        )

    @staticmethod
    def run(job: PosterJob | TranscodeJob) -> ImageResult:
        if not isinstance(job, PosterJob):
            raise TypeError("a transcode is streamed by the server process, not run in a worker")
        from PIL import Image, UnidentifiedImageError

        from .image import finish_image

        limits = job.limits
        with probed_input(job) as (source, descriptors, info, deadline):
            _check_video(info, limits)
            at = seek_time(job.seek, job.seek_fraction, info.duration)
            frame = run_ffmpeg(
                limits.ffmpeg,
                [
                    *("-hide_banner", "-nostdin", "-loglevel", "error"),
                    *("-ss", f"{at:.3f}", "-i", source),
                    *("-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn"),
                    *("-f", "image2pipe", "-vcodec", "png", "-"),
                ],
                timeout=remaining(deadline),
                pass_fds=descriptors,
            )
        if frame.returncode < 0:
            raise ProcessingUnavailable("ffmpeg was stopped (CPU or memory limit)")
        if frame.returncode != 0 or not frame.stdout:
            reason = frame.stderr.strip().splitlines()[-1:] or ["no frame decoded"]
            raise CorruptMedia(f"no frame at t={at:g}s: {reason[0][:80]}")
        try:
            image = Image.open(io.BytesIO(frame.stdout), formats=("PNG",))
            image.load()
        except (UnidentifiedImageError, OSError) as error:
            raise CorruptMedia(f"ffmpeg wrote no readable frame ({error})") from None
        return finish_image(image, job.spec, job.output_format)


def _check_video(info: MediaInfo, limits: MediaLimits) -> None:
    if info.video_codec is None:
        raise CorruptMedia("source has no video stream")
    limits.check_duration(info)
    limits.check_frame(info)
