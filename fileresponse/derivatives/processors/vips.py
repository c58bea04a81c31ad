"""Images with libvips (pyvips): the Pillow engine's contract, with libvips doing the work.

Chosen by ``DERIVATIVES_ENGINE = "vips"``; needs the ``fileresponse[vips]``
extra (``pyvips`` and ``pyvips-binary``, a wheel with libvips inside). Jobs,
results, errors and geometry are those of the Pillow engine
(:mod:`.jobs`): same output sizes, same crop boxes, same typed errors.

The steps, in order:

1. Limits before decoding: the file size (``max_source_bytes``), then the
   header, which a lazy load reads alone: the loader must be one of
   :data:`INPUT_LOADERS` and the pixel count at most ``max_source_pixels``.
2. Shrink-on-load: a JPEG is decoded at 1/2, 1/4 or 1/8 (DCT scaling), a
   WebP scaled by libwebp, to no less than twice the needed size.
3. EXIF orientation applied (``autorot``); geometry on the oriented image.
4. The box cut out, then resized with Lanczos 3 (on premultiplied alpha) to
   exactly the size :meth:`Spec.output_size
   <fileresponse.derivatives.spec.Spec.output_size>` announces.
5. Color: an embedded ICC profile other than sRGB is converted to sRGB; CMYK
   without a profile is converted to RGB; 16 bits become 8.
6. Encoding with no metadata at all (``keep=none``: no EXIF, XMP, ICC).

Like Pillow, decoding refuses damaged data (``fail_on="warning"``) rather
than pad it with grey. libvips reads no BMP or ICO, and of the HEIF family
only AVIF is let through. The process-wide libvips operation cache is turned
off (a source file replaced in place must not come back from it) and
untrusted loaders are blocked, on the first job.
"""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from typing import Any, Final

import pyvips

from fileresponse.derivatives.exceptions import (
    CorruptImage,
    NotAnImage,
    SourceTooLarge,
    UnsupportedFormat,
)
from fileresponse.derivatives.processors.jobs import (
    CONTENT_TYPES,
    DEFAULT_QUALITY,
    ImageJob,
    ImageResult,
    open_local,
    source_box,
)

__all__ = [
    "CONTENT_TYPES",
    "ENGINE_VERSION",
    "INPUT_LOADERS",
    "output_formats",
    "process_image",
]

#: Part of every cache key: bump it when the output of the same job changes.
ENGINE_VERSION: Final = "vips-1"

#: The libvips loaders allowed to decode (any other, e.g. ``vipsload``, is refused unread).
INPUT_LOADERS: Final = frozenset(
    {"jpegload", "pngload", "webpload", "gifload", "tiffload", "heifload"}
)

_SUFFIXES: Final = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "avif": ".avif"}
#: Decode to at least this many times the needed size, as the Pillow engine drafts.
_SHRINK_GAP: Final = 2.0
_JPEG_SHRINKS: Final = (8, 4, 2)
_SWAPPING_ORIENTATIONS: Final = frozenset({5, 6, 7, 8})
#: Decoding errors and warnings (a corrupt or truncated stream) fail the job.
_FAIL_ON: Final = "warning"
_KEEP_NOTHING: Final = 0  # pyvips.enums.ForeignKeep.NONE

_set_up_done = False


def _set_up() -> None:
    global _set_up_done
    if not _set_up_done:
        pyvips.cache_set_max(0)
        pyvips.block_untrusted_set(True)
        _set_up_done = True


@lru_cache(maxsize=1)
def output_formats() -> frozenset[str]:
    """The output formats this libvips can write (AVIF needs libheif with an AV1 encoder)."""
    probe = pyvips.Image.black(8, 8, bands=3).copy(interpretation="srgb").cast("uchar")
    formats = set()
    for name, suffix in _SUFFIXES.items():
        try:
            probe.write_to_buffer(suffix)
        except pyvips.Error:
            continue
        formats.add(name)
    return frozenset(formats)


def process_image(job: ImageJob) -> ImageResult:
    """Make the derivative ``job`` describes; raise a ``ProcessingError`` on bad input."""
    if job.output_format not in output_formats():
        raise UnsupportedFormat(f"unsupported format: {job.output_format}")
    _set_up()
    source = _open_source(job)
    header = _read_header(source, job)
    try:
        image = _decode(source, header, job)
        image = _to_srgb(image, header)
        image = _for_format(image, job.output_format)
        data = image.write_to_buffer(
            _SUFFIXES[job.output_format], keep=_KEEP_NOTHING, **_save_options(job)
        )
    except pyvips.Error as error:
        # libvips decodes lazily: a damaged stream shows when the output is written.
        raise CorruptImage(f"source image cannot be decoded: {_short(error)}") from None
    return ImageResult(data=data, width=image.width, height=image.height, format=job.output_format)


def _open_source(job: ImageJob) -> pyvips.Source:
    """The source as a libvips source (the local file, or the given bytes), within the limit."""
    if job.data is not None:
        size = len(job.data)
        _check_size(size, job)
        return pyvips.Source.new_from_memory(job.data)
    if job.path is None:
        raise ValueError("an ImageJob needs a path or data")
    with open_local(job) as file:
        _check_size(os.fstat(file.fileno()).st_size, job)
        try:
            # libvips keeps a duplicate of the descriptor that was checked.
            return pyvips.Source.new_from_descriptor(file.fileno())
        except pyvips.Error:
            raise NotAnImage("source is gone") from None


def _check_size(size: int, job: ImageJob) -> None:
    if size > job.max_source_bytes:
        raise SourceTooLarge(f"source too large: {size} bytes (limit {job.max_source_bytes})")


def _load(source: pyvips.Source, **options: Any) -> pyvips.Image:
    return pyvips.Image.new_from_source(
        source, "", access="sequential", fail_on=_FAIL_ON, **options
    )


def _read_header(source: pyvips.Source, job: ImageJob) -> pyvips.Image:
    """The lazily loaded source: header read, loader allowed, pixels within the limit."""
    try:
        header = _load(source)
        loader = str(header.get("vips-loader")).removesuffix("_source")
    except pyvips.Error:
        raise NotAnImage("source is not an image of a supported format") from None
    if loader not in INPUT_LOADERS or (loader == "heifload" and not _is_avif(header)):
        raise NotAnImage("source is not an image of a supported format")
    if header.width * header.height > job.max_source_pixels:
        raise SourceTooLarge(
            f"source image too large: {header.width}x{header.height} pixels "
            f"(limit {job.max_source_pixels})"
        )
    return header


def _is_avif(header: pyvips.Image) -> bool:
    return bool(header.get_typeof("heif-compression")) and header.get("heif-compression") == "av1"


def _orientation(header: pyvips.Image) -> int:
    if not header.get_typeof("orientation"):
        return 1
    value = header.get("orientation")
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _decode(source: pyvips.Source, header: pyvips.Image, job: ImageJob) -> pyvips.Image:
    """Shrink on load, orient, cut the box and resize: the geometry is done."""
    orientation = _orientation(header)
    raw_width, raw_height = header.width, header.height
    swap = orientation in _SWAPPING_ORIENTATIONS
    width, height = (raw_height, raw_width) if swap else (raw_width, raw_height)
    spec = job.spec
    out_width, out_height = spec.output_size(width, height)
    left, top, right, bottom = source_box(spec, width, height)

    # How far the decoder may shrink the whole image and keep twice the needed pixels.
    room = min(
        (right - left) / (out_width * _SHRINK_GAP),
        (bottom - top) / (out_height * _SHRINK_GAP),
    )
    image = header
    loader = str(header.get("vips-loader")).removesuffix("_source")
    if loader == "jpegload":
        shrink = next((factor for factor in _JPEG_SHRINKS if factor <= room), 1)
        if shrink > 1:
            image = _load(source, shrink=shrink)
    elif loader == "webpload" and room >= 2:
        image = _load(source, scale=1 / room)
    if orientation != 1:
        image = image.autorot()

    scale_x, scale_y = image.width / width, image.height / height
    box_left = min(round(left * scale_x), image.width - 1)
    box_top = min(round(top * scale_y), image.height - 1)
    box_width = max(1, min(round(right * scale_x), image.width) - box_left)
    box_height = max(1, min(round(bottom * scale_y), image.height) - box_top)
    if (box_left, box_top, box_width, box_height) != (0, 0, image.width, image.height):
        image = image.crop(box_left, box_top, box_width, box_height)
    if (box_width, box_height) != (out_width, out_height):
        image = _resize(image, out_width / box_width, out_height / box_height)
    if (image.width, image.height) != (out_width, out_height):
        # A pixel of rounding in the resize: cut or extend an edge.
        image = image.gravity("centre", out_width, out_height, extend="copy")
    return image


def _resize(image: pyvips.Image, scale_x: float, scale_y: float) -> pyvips.Image:
    """Lanczos 3, on premultiplied alpha so that transparent pixels do not bleed."""
    if not image.hasalpha():
        return image.resize(scale_x, vscale=scale_y, kernel="lanczos3")
    band_format = image.format
    resized = image.premultiply().resize(scale_x, vscale=scale_y, kernel="lanczos3")
    return resized.unpremultiply().cast(band_format)


def _to_srgb(image: pyvips.Image, header: pyvips.Image) -> pyvips.Image:
    """Convert to 8-bit sRGB (or grey) by the embedded ICC profile, if it is not sRGB already."""
    if header.get_typeof("icc-profile-data"):
        profile = header.get("icc-profile-data")
        if isinstance(profile, bytes) and "srgb" not in _profile_description(profile).lower():
            # A broken profile is ignored, as browsers do.
            with contextlib.suppress(pyvips.Error):
                image = image.icc_transform("srgb", embedded=True, intent="perceptual")
    if image.interpretation == "cmyk":
        image = _cmyk_to_rgb(image)
    if image.format != "uchar":
        # 16-bit (or float) pixels: scaled to 8 bits, not clipped.
        image = image.colourspace("b-w" if image.bands < 3 else "srgb")
    return image


def _cmyk_to_rgb(image: pyvips.Image) -> pyvips.Image:
    """CMYK without a profile, converted as Pillow does: ``(255 - C) * (255 - K) / 255``."""
    cyan_magenta_yellow, black = image[0:3], image[3]
    rgb = (255 - cyan_magenta_yellow) * (255 - black) / 255
    return rgb.cast("uchar").copy(interpretation="srgb")


def _profile_description(profile: bytes) -> str:
    """The ``desc`` tag of an ICC profile (v2 text or v4 ``mluc``), or ``""``."""
    try:
        count = int.from_bytes(profile[128:132], "big")
        for index in range(min(count, 64)):
            entry = 132 + 12 * index
            if profile[entry : entry + 4] != b"desc":
                continue
            offset = int.from_bytes(profile[entry + 4 : entry + 8], "big")
            size = int.from_bytes(profile[entry + 8 : entry + 12], "big")
            tag = profile[offset : offset + size]
            if tag[:4] == b"desc":
                length = int.from_bytes(tag[8:12], "big")
                return tag[12 : 12 + length].split(b"\x00")[0].decode("latin-1")
            if tag[:4] == b"mluc":
                length = int.from_bytes(tag[20:24], "big")
                start = int.from_bytes(tag[24:28], "big")
                return tag[start : start + length].decode("utf-16-be", "replace")
    except (ValueError, IndexError):
        pass
    return ""


def _for_format(image: pyvips.Image, output_format: str) -> pyvips.Image:
    """A band layout the encoder takes: JPEG has no alpha (flattened on white)."""
    if output_format == "jpeg" and image.hasalpha():
        return image.flatten(background=[255] * (image.bands - 1))
    return image


def _save_options(job: ImageJob) -> dict[str, object]:
    output_format = job.output_format
    if output_format == "png":
        return {"compression": 6}
    quality = job.spec.quality or DEFAULT_QUALITY[output_format]
    if output_format == "jpeg":
        return {"Q": quality}
    if output_format == "webp":
        return {"Q": quality, "effort": 4}
    return {"Q": quality, "effort": 2}


def _short(error: pyvips.Error) -> str:
    """The last line of a libvips error (its cause), at most 80 characters."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[-1] if lines else type(error).__name__
    return text if len(text) <= 80 else text[:77] + "..."
