"""What every image engine takes and returns, and the geometry they share.

An engine (:mod:`.image` for Pillow, :mod:`.vips` for libvips) turns an
:class:`ImageJob` into an :class:`ImageResult`; both are plain picklable
values, so a job crosses into a worker process and its result comes back.
The geometry (:func:`source_box`, with :meth:`Spec.output_size
<fileresponse.derivatives.spec.Spec.output_size>`) lives here so that both
engines cut and scale the same way. No imaging library is imported here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO, Final

from fileresponse.derivatives.spec import Spec

from .base import open_checked

__all__ = [
    "CONTENT_TYPES",
    "DEFAULT_QUALITY",
    "ImageJob",
    "ImageResult",
    "open_local",
    "source_box",
]

CONTENT_TYPES: Final = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
}

#: The quality of a lossy format when the spec gives none (``q=``).
DEFAULT_QUALITY: Final = {"jpeg": 85, "webp": 80, "avif": 60}


@dataclass(frozen=True, slots=True)
class ImageJob:
    """One run of an engine: where the bytes are, what to make, the limits.

    Exactly one of ``path`` (a local file, read by the worker) and ``data``
    (the source's bytes, for remote storages) is set. With ``identity``, the
    worker refuses a file at ``path`` that is not the one stat'ed (replaced,
    or reached through a symlink swapped in since): see :func:`open_local`. ``output_format`` is
    resolved already (``auto`` and "keep the family" are decided by the view).
    ``engine`` names the engine that runs it (``DERIVATIVES_ENGINE``).
    """

    spec: Spec
    output_format: str
    max_source_pixels: int
    max_source_bytes: int
    path: str | None = None
    data: bytes | None = None
    engine: str = "pillow"
    #: ``(st_dev, st_ino)`` of the file stat'ed at ``path``, checked when it is opened.
    identity: tuple[int, int] | None = None

    @property
    def processor(self) -> str:
        return "fileresponse.derivatives.processors.imaging.ImageProcessor"


@dataclass(frozen=True, slots=True)
class ImageResult:
    data: bytes
    width: int
    height: int
    format: str

    @property
    def summary(self) -> str:
        return f"{self.width}x{self.height} {self.format}"


def open_local(job: ImageJob) -> IO[bytes]:
    """The local file of ``job``, opened; :class:`SourceChanged` if it is not the one stat'ed.

    The path is opened by name in the worker: a file put in its place, or a
    directory on the way swapped for a symlink, since the request stat'ed it
    shows as another ``(st_dev, st_ino)``.
    """
    assert job.path is not None
    return os.fdopen(open_checked(job.path, job.identity), "rb")


def source_box(spec: Spec, width: int, height: int) -> tuple[float, float, float, float]:
    """The part of an (oriented) source of this size that the output shows, in its pixels.

    ``fit`` shows all of it; ``fill`` the largest region with the output's
    aspect ratio, placed by the gravity; ``crop`` the box itself, placed by
    the gravity (integer edges).
    """
    if spec.mode == "fit":
        return (0.0, 0.0, float(width), float(height))
    out_width, out_height = spec.output_size(width, height)
    if spec.mode == "crop":
        region_width, region_height = float(out_width), float(out_height)
    else:
        scale = max(out_width / width, out_height / height)
        region_width = min(float(width), out_width / scale)
        region_height = min(float(height), out_height / scale)
    left = _place(width - region_width, spec.gravity, "west", "east")
    top = _place(height - region_height, spec.gravity, "north", "south")
    if spec.mode == "crop":
        left, top = float(int(left)), float(int(top))
    return (left, top, left + region_width, top + region_height)


def _place(extra: float, gravity: str, start: str, end: str) -> float:
    if start in gravity:
        return 0.0
    if end in gravity:
        return extra
    return extra / 2
