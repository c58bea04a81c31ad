"""Images with Pillow: decode within limits, orient, resize, convert to sRGB, encode.

:func:`process_image` runs in a worker process (see
:mod:`fileresponse.derivatives.executor`): it takes an :class:`ImageJob` and
returns an :class:`ImageResult`, both plain picklable values, and raises the
errors of :mod:`fileresponse.derivatives.exceptions`, which pickle too.

The steps, in order:

1. Limits before decoding: the file size (``max_source_bytes``), then the
   pixel count read from the header (``max_source_pixels``), so that a
   decompression bomb is refused before it takes any memory.
2. JPEG draft mode: the decoder scales by 1/2, 1/4 or 1/8 while decoding
   (DCT scaling), to no less than twice the needed size.
3. EXIF orientation applied; geometry computed on the oriented image.
4. Resize with Lanczos, ``reducing_gap`` letting Pillow :meth:`~PIL.Image.Image.reduce`
   first (a fast box filter by an integer factor) for large downscales.
5. Color: an embedded ICC profile other than sRGB is converted to sRGB; CMYK
   without a profile is converted to RGB.
6. Encoding with no metadata at all (no EXIF, no ICC, no comments).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Final

from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError

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
from fileresponse.derivatives.spec import Spec

__all__ = [
    "CONTENT_TYPES",
    "ENGINE_VERSION",
    "INPUT_FORMATS",
    "ImageJob",
    "ImageResult",
    "finish_image",
    "output_formats",
    "process_image",
    "source_box",
]

#: Part of every cache key: bump it when the output of the same job changes.
ENGINE_VERSION: Final = "pillow-1"

#: The formats Pillow may decode here; any other (EPS, PSD, ICO, ...) is refused unread.
INPUT_FORMATS: Final = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", "AVIF")

_PILLOW_NAMES: Final = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF"}
#: Decode JPEGs to at least this many times the needed size, like Image.thumbnail.
_DRAFT_GAP: Final = 2.0
#: Let resize() reduce() by an integer factor first while the rest stays this large.
_REDUCING_GAP: Final = 3.0
_SWAPPING_ORIENTATIONS: Final = frozenset({5, 6, 7, 8})
_SRGB_PROFILE: ImageCms.ImageCmsProfile | None = None


def output_formats() -> frozenset[str]:
    """The output formats this Pillow can write (AVIF needs a build with libavif)."""
    Image.init()
    return frozenset(name for name, pillow in _PILLOW_NAMES.items() if pillow in Image.SAVE)


def process_image(job: ImageJob) -> ImageResult:
    """Make the derivative ``job`` describes; raise a ``ProcessingError`` on bad input."""
    if job.output_format not in output_formats():
        raise UnsupportedFormat(f"unsupported format: {job.output_format}")
    with _open_source(job) as source:
        try:
            image = _decode(source, job)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            # Pillow's own bound (Image.MAX_IMAGE_PIXELS), when it is below ours; the
            # warning is an error in worker processes (see the executor).
            raise SourceTooLarge("source image too large (decompression bomb check)") from None
        except UnidentifiedImageError:
            raise NotAnImage("source is not an image of a supported format") from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise CorruptImage(f"source image cannot be decoded: {_short(error)}") from None
    return _encode(image, job.output_format, job.spec.quality)


def finish_image(image: Image.Image, spec: Spec, output_format: str) -> ImageResult:
    """Steps 3 to 6 for an image decoded elsewhere (a PDF page, a video frame).

    ``image`` is upright already; the spec's box, mode, gravity and quality
    apply as to any image.
    """
    if output_format not in output_formats():
        raise UnsupportedFormat(f"unsupported format: {output_format}")
    image = _for_resampling(image)
    width, height = image.size
    box = source_box(spec, width, height)
    image = _apply_geometry(image, spec, box, spec.output_size(width, height), 1.0)
    return _encode(image, output_format, spec.quality)


def _encode(image: Image.Image, output_format: str, quality: int | None) -> ImageResult:
    """Colour to sRGB, the encoder's mode, no metadata: the derivative's bytes."""
    image = _to_srgb(image)
    image = _for_format(image, output_format)
    buffer = io.BytesIO()
    image.info = {}  # no metadata goes out: the encoders read some of it from here
    image.save(buffer, format=_PILLOW_NAMES[output_format], **_save_options(output_format, quality))
    return ImageResult(
        data=buffer.getvalue(), width=image.width, height=image.height, format=output_format
    )


@contextmanager
def _open_source(job: ImageJob) -> Iterator[IO[bytes]]:
    """The source as a binary file (the local file, or the bytes given), within the byte limit."""
    file: IO[bytes]
    if job.data is not None:
        file = io.BytesIO(job.data)
    elif job.path is not None:
        file = open_local(job)
    else:
        raise ValueError("an ImageJob needs a path or data")
    with file:
        size = len(job.data) if job.data is not None else os.fstat(file.fileno()).st_size
        if size > job.max_source_bytes:
            raise SourceTooLarge(f"source too large: {size} bytes (limit {job.max_source_bytes})")
        yield file


def _decode(file: IO[bytes], job: ImageJob) -> Image.Image:
    """Open within the limits, draft, load, orient and resize: the geometry is done."""
    opened = Image.open(file, formats=INPUT_FORMATS)
    raw_width, raw_height = opened.size
    if raw_width * raw_height > job.max_source_pixels:
        raise SourceTooLarge(
            f"source image too large: {raw_width}x{raw_height} pixels "
            f"(limit {job.max_source_pixels})"
        )
    orientation = _orientation(opened)
    swap = orientation in _SWAPPING_ORIENTATIONS
    width, height = (raw_height, raw_width) if swap else (raw_width, raw_height)
    spec = job.spec
    out_width, out_height = spec.output_size(width, height)
    box = source_box(spec, width, height)

    draft_factor = 1.0
    if opened.format == "JPEG":
        box_width, box_height = box[2] - box[0], box[3] - box[1]
        needed = (
            max(1, int(width * out_width / box_width * _DRAFT_GAP)),
            max(1, int(height * out_height / box_height * _DRAFT_GAP)),
        )
        if swap:
            needed = (needed[1], needed[0])
        mode = "RGB" if opened.mode == "RGB" else None
        drafted = opened.draft(mode, needed)
        if drafted is not None:
            draft_factor = drafted[1][2] / raw_width  # the decoded size per original pixel

    opened.load()
    image: Image.Image = ImageOps.exif_transpose(opened) if orientation != 1 else opened
    image = _for_resampling(image)
    return _apply_geometry(image, spec, box, (out_width, out_height), draft_factor)


def _apply_geometry(
    image: Image.Image,
    spec: Spec,
    box: tuple[float, float, float, float],
    size: tuple[int, int],
    draft_factor: float,
) -> Image.Image:
    """Cut ``box`` (in source pixels; ``draft_factor`` of them decoded) out, at ``size``."""
    out_width, out_height = size
    left, top, right, bottom = (edge * draft_factor for edge in box)
    if spec.mode == "crop" and draft_factor == 1.0:
        return image.crop((round(left), round(top), round(right), round(bottom)))
    whole = (left, top, right, bottom) == (0.0, 0.0, float(image.width), float(image.height))
    if whole and (out_width, out_height) == image.size:
        return image
    return image.resize(
        (out_width, out_height),
        Image.Resampling.LANCZOS,
        box=(left, top, right, bottom),
        reducing_gap=_REDUCING_GAP,
    )


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except (OSError, SyntaxError, ValueError, TypeError):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _for_resampling(image: Image.Image) -> Image.Image:
    """A mode Lanczos works in: palette and odd modes become L, RGB or RGBA.

    CMYK stays CMYK (its ICC profile, if any, is applied after resizing).
    """
    mode = image.mode
    if mode in ("RGB", "RGBA", "L", "CMYK"):
        return image
    if mode in ("P", "PA", "LA", "1") or "transparency" in image.info:
        has_alpha = mode in ("PA", "LA") or "transparency" in image.info
        if mode == "1":
            return image.convert("L")
        return image.convert("RGBA" if has_alpha else "RGB")
    if mode.startswith(("I", "F")):
        # 16-bit and float grey: scale to 8 bits instead of clipping.
        high = 65535.0 if mode.startswith("I;16") or mode == "I" else 1.0
        return image.convert("F").point(lambda value: value * 255.0 / high).convert("L")
    return image.convert("RGB")


def _srgb() -> ImageCms.ImageCmsProfile:
    global _SRGB_PROFILE
    if _SRGB_PROFILE is None:
        _SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return _SRGB_PROFILE


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert to sRGB by the embedded ICC profile (if it is not sRGB already)."""
    icc = image.info.get("icc_profile")
    if icc and isinstance(icc, bytes):
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            description = ImageCms.getProfileDescription(profile) or ""
            if "srgb" not in description.lower():
                return _apply_profile(image, profile)
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a broken profile is ignored, as browsers do
    if image.mode == "CMYK":
        return image.convert("RGB")
    return image


def _apply_profile(image: Image.Image, profile: ImageCms.ImageCmsProfile) -> Image.Image:
    alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
    if alpha is not None:
        image = image.convert("RGB" if image.mode == "RGBA" else "L")
    converted = ImageCms.profileToProfile(
        image,
        profile,
        _srgb(),
        renderingIntent=ImageCms.Intent.PERCEPTUAL,
        outputMode="RGB",
    )
    assert converted is not None
    if alpha is not None:
        converted.putalpha(alpha)
    return converted


def _for_format(image: Image.Image, output_format: str) -> Image.Image:
    """A mode the encoder takes: JPEG has no alpha (flattened on white)."""
    if output_format == "jpeg":
        if image.mode in ("RGBA", "LA"):
            background = Image.new("RGB", image.size, (255, 255, 255))
            background.paste(image.convert("RGBA"), mask=image.getchannel("A"))
            return background
        if image.mode not in ("RGB", "L"):
            return image.convert("RGB")
        return image
    if image.mode not in ("RGB", "RGBA", "L", "LA") or (
        output_format != "png" and image.mode in ("L", "LA")
    ):
        return image.convert("RGBA" if "A" in image.mode else "RGB")
    return image


def _save_options(output_format: str, quality: int | None) -> dict[str, object]:
    if output_format == "png":
        return {"compress_level": 6}
    quality = quality or DEFAULT_QUALITY[output_format]
    if output_format == "jpeg":
        return {"quality": quality}
    if output_format == "webp":
        return {"quality": quality, "method": 4}
    return {"quality": quality, "speed": 8}


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 80 else text[:77] + "..."
