"""Write the example's sample media, deterministically and without downloads.

Images by Pillow, a short video and a sound by the ffmpeg of ``imageio-ffmpeg``
(its test sources), a PDF by Pillow: a few seconds in all. Each sample is
saved through the default storage (a directory, the MinIO bucket or the queued
storage) and, for the library's kinds, gets its ``Media`` row; a sample whose
bytes are unchanged is left as it is.
"""

from __future__ import annotations

import io
import random
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError

MIB = 1024 * 1024
SEED = 20240601
#: Where the library's samples are, in the default storage.
LIBRARY_DIRECTORY = "library/samples"


def random_bytes(size: int, seed: int = SEED) -> bytes:
    return random.Random(seed).randbytes(size)


def text_file() -> bytes:
    line = "line {:04d}: fileresponse serves files, whole or in ranges.\n"
    return "".join(line.format(number) for number in range(200)).encode()


def unicode_text() -> bytes:
    return "Grüße aus dem Beispiel, 日本語のファイル名, ça marche.\n".encode()


def _pillow() -> Any:
    try:
        import PIL.Image
        import PIL.ImageDraw
    except ImportError:
        raise CommandError(
            "Pillow is needed for the samples: pip install 'fileresponse[demo]'."
        ) from None
    return PIL


def gradient_png(width: int = 640, height: int = 400) -> bytes:
    pil = _pillow()
    horizontal = pil.Image.linear_gradient("L").rotate(90).resize((width, height))
    vertical = pil.Image.linear_gradient("L").resize((width, height))
    blue = pil.Image.new("L", (width, height), 160)
    image = pil.Image.merge("RGB", (horizontal, vertical, blue))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def photo(number: int, width: int, height: int) -> Callable[[], bytes]:
    """A made-up "photo": a sky gradient and a few coloured discs."""

    def produce() -> bytes:
        pil = _pillow()
        rng = random.Random(SEED + number)
        top = tuple(rng.randrange(40, 200) for _ in range(3))
        bottom = tuple(rng.randrange(40, 200) for _ in range(3))
        mask = pil.Image.linear_gradient("L").resize((width, height))
        image = pil.Image.composite(
            pil.Image.new("RGB", (width, height), bottom),
            pil.Image.new("RGB", (width, height), top),
            mask,
        )
        draw = pil.ImageDraw.Draw(image)
        short = min(width, height)
        for _ in range(6):
            radius = rng.randrange(short // 12, short // 3)
            x, y = rng.randrange(width), rng.randrange(height)
            color = tuple(rng.randrange(256) for _ in range(3))
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=color)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        return buffer.getvalue()

    return produce


def document_pdf(pages: int = 3) -> bytes:
    """A PDF of ``pages`` A5-ish pages, each with its number and a coloured block."""
    pil = _pillow()
    colors = [(220, 30, 30), (30, 160, 30), (30, 30, 220), (230, 160, 20)]
    images = []
    for index in range(pages):
        page = pil.Image.new("RGB", (600, 800), "white")
        draw = pil.ImageDraw.Draw(page)
        draw.rectangle((60, 60, 540, 360), fill=colors[index % len(colors)])
        draw.text((60, 420), f"fileresponse sample, page {index + 1} of {pages}", fill="black")
        for line in range(12):
            draw.line(
                (60, 470 + line * 24, 540 - (line % 3) * 80, 470 + line * 24), fill=(120,) * 3
            )
        images.append(page)
    buffer = io.BytesIO()
    fixed = time.gmtime(1717200000)  # the same bytes each time
    images[0].save(
        buffer,
        format="PDF",
        save_all=True,
        append_images=images[1:],
        resolution=72,
        creationDate=fixed,
        modDate=fixed,
    )
    return buffer.getvalue()


def _ffmpeg(suffix: str, arguments: list[str]) -> bytes:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise CommandError(
            "imageio-ffmpeg is needed for the video and sound: pip install 'fileresponse[demo]'."
        ) from None
    with tempfile.TemporaryDirectory() as directory:
        target = Path(directory) / f"sample{suffix}"
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error"]
        completed = subprocess.run(
            [*command, "-nostdin", "-y", *arguments, str(target)],
            capture_output=True,
            timeout=120,
            check=False,
        )
        if completed.returncode != 0:
            raise CommandError(f"ffmpeg failed: {completed.stderr.decode(errors='replace')}")
        return target.read_bytes()


def video_mp4(seconds: int = 4) -> bytes:
    """ffmpeg's moving test pattern with a tone, 640x360 H.264 and AAC."""
    return _ffmpeg(
        ".mp4",
        [
            *("-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}"),
            *("-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=44100:duration={seconds}"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
            *("-c:a", "aac", "-shortest", "-movflags", "+faststart"),
        ],
    )


def sound_mp3(seconds: int = 8) -> bytes:
    """A tone that swells and fades twice: a waveform with a shape."""
    envelope = "sin(2*PI*t/4)*sin(2*PI*t/4)"
    tone = f"(0.6*sin(2*PI*330*t)+0.3*sin(2*PI*495*t))*{envelope}"
    return _ffmpeg(
        ".mp3",
        [
            *("-f", "lavfi", "-i", f"aevalsrc=exprs='{tone}':s=44100:d={seconds}"),
            *("-c:a", "libmp3lame", "-b:a", "96k"),
        ],
    )


@dataclass(frozen=True)
class LibrarySample:
    """A file of the media library: its title and the name it was "uploaded" with."""

    title: str
    original_name: str
    produce: Callable[[], bytes]


LIBRARY: tuple[LibrarySample, ...] = (
    LibrarySample("Discs at dusk", "discs at dusk.jpg", photo(1, 1600, 1200)),
    LibrarySample("Harbour", "harbour.jpg", photo(2, 1600, 1067)),
    LibrarySample("Tower (portrait)", "tower.jpg", photo(3, 900, 1350)),
    LibrarySample("A small one, never upscaled", "small.jpg", photo(4, 320, 240)),
    LibrarySample("Grüße aus Köln", "Grüße aus Köln 日本.png", gradient_png),
    LibrarySample("Test pattern", "test pattern.mp4", video_mp4),
    LibrarySample("Two swells", "two swells.mp3", sound_mp3),
    LibrarySample("A short document", "a short document.pdf", document_pdf),
)

# Files of the storage listing (/storage/), beside the library's.
SAMPLES: dict[str, Callable[[], bytes]] = {
    "binary/random-10MiB.bin": lambda: random_bytes(10 * MIB),
    "text/hello.txt": text_file,
    "text/naïve café 日本語.txt": unicode_text,
    "nested/level-1/level-2/deep.txt": lambda: b"three folders down\n",
}


class Command(BaseCommand):
    help = "Write deterministic sample media into the default storage, with their Media rows."

    def handle(self, *args: Any, **options: Any) -> None:
        from gallery.describe import describe
        from gallery.models import Media, kind_of

        for name, produce in SAMPLES.items():
            self._save(name, produce())
        for sample in LIBRARY:
            name = f"{LIBRARY_DIRECTORY}/{default_storage.get_valid_name(sample.original_name)}"
            changed = self._save(name, sample.produce())
            item = Media.objects.filter(file=name).first()
            if item is None or changed:
                item = item or Media(file=name)
                item.title = sample.title
                item.original_name = sample.original_name
                item.kind = kind_of(sample.original_name)
                item.save()  # a new version: its derivative URLs change
                describe(item)
        self.stdout.write(f"sample media ready in {default_storage!r}")

    def _save(self, name: str, content: bytes) -> bool:
        """Save ``content`` as ``name`` unless the storage holds these bytes already."""
        if default_storage.exists(name):
            if default_storage.size(name) == len(content):
                with default_storage.open(name, "rb") as stored:
                    if stored.read() == content:
                        self.stdout.write(f"unchanged  {name}")
                        return False
            default_storage.delete(name)
        saved = default_storage.save(name, ContentFile(content))
        if saved != name:
            raise CommandError(f"the storage saved {name!r} as {saved!r}")
        self.stdout.write(self.style.SUCCESS(f"written    {name} ({len(content)} bytes)"))
        return True
