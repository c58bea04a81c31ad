"""Source media for the derivative tests, made here: videos and sounds by ffmpeg, PDFs by PDFium.

No downloads: ffmpeg's ``lavfi`` test sources (``testsrc``, ``sine``) and a
document of coloured rectangles, small and quick to make.
"""

from __future__ import annotations

import io
import random
import subprocess
from pathlib import Path

__all__ = [
    "PAGE_COLORS",
    "PAGE_SIZE",
    "corrupt",
    "ffmpeg",
    "pdf",
    "sound",
    "video",
]

#: Points of each page of :func:`pdf`.
PAGE_SIZE = (600, 800)
#: The colour of the rectangle on the top left quarter of page ``n`` (1-based) of :func:`pdf`.
PAGE_COLORS = ((220, 30, 30), (30, 160, 30), (30, 30, 220), (230, 160, 20))


def ffmpeg() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _make(arguments: list[str], target: Path) -> Path:
    subprocess.run(
        [ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *arguments, str(target)],
        check=True,
        timeout=120,
    )
    return target


def video(
    target: Path,
    *,
    seconds: float = 3,
    size: str = "320x240",
    rate: int = 25,
    audio: bool = True,
    bitrate: str | None = None,
) -> Path:
    """An H.264 MP4 of ffmpeg's test pattern (with a 440 Hz tone); ``bitrate``: ``"300k"``."""
    sources = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        sources += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    codecs = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if bitrate is not None:
        codecs += ["-b:v", bitrate]
    if audio:
        codecs += ["-c:a", "aac", "-shortest"]
    return _make([*sources, *codecs], target)


def sound(target: Path, *, seconds: float = 3, frequency: int = 440) -> Path:
    """A sine tone, encoded by the suffix of ``target`` (``.mp3``, ``.wav``, ``.ogg``...)."""
    return _make(
        ["-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate=48000:duration={seconds}"],
        target,
    )


def pdf(pages: int = 3) -> bytes:
    """A document of ``pages`` pages of :data:`PAGE_SIZE`, each with the top left quarter
    filled with its colour of :data:`PAGE_COLORS`."""
    import pypdfium2
    import pypdfium2.raw as pdfium_c

    document = pypdfium2.PdfDocument.new()
    width, height = PAGE_SIZE
    for index in range(pages):
        page = document.new_page(width, height)
        rectangle = pdfium_c.FPDFPageObj_CreateNewRect(0, height / 2, width / 2, height / 2)
        red, green, blue = PAGE_COLORS[index % len(PAGE_COLORS)]
        pdfium_c.FPDFPageObj_SetFillColor(rectangle, red, green, blue, 255)
        pdfium_c.FPDFPath_SetDrawMode(rectangle, pdfium_c.FPDF_FILLMODE_ALTERNATE, False)
        pdfium_c.FPDFPage_InsertObject(page.raw, rectangle)
        pdfium_c.FPDFPage_GenerateContent(page.raw)
        page.close()
    buffer = io.BytesIO()
    document.save(buffer)
    document.close()
    return buffer.getvalue()


def corrupt(size: int = 20_000, seed: int = 9) -> bytes:
    """Random bytes (the same each time)."""
    return random.Random(seed).randbytes(size)
