"""Write the example's sample media, deterministically and without downloads."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

MIB = 1024 * 1024
SEED = 20240601


def random_bytes(size: int, seed: int = SEED) -> bytes:
    return random.Random(seed).randbytes(size)


def text_file() -> bytes:
    line = "line {:04d}: fileresponse serves files, whole or in ranges.\n"
    return "".join(line.format(number) for number in range(200)).encode()


def unicode_text() -> bytes:
    return "Grüße aus dem Beispiel, 日本語のファイル名, ça marche.\n".encode()


def gradient_png(width: int = 320, height: int = 200) -> bytes:
    try:
        from PIL import Image
    except ImportError:
        raise CommandError(
            "Pillow is needed for the sample PNG: pip install 'fileresponse[images]'."
        ) from None

    image = Image.new("RGB", (width, height))
    image.putdata(
        [
            (x * 255 // (width - 1), y * 255 // (height - 1), 160)
            for y in range(height)
            for x in range(width)
        ]
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def gallery_photo(number: int, width: int = 1600, height: int = 1200) -> Callable[[], bytes]:
    """A made-up "photo" for the gallery: a sky gradient and a few colored discs."""

    def produce() -> bytes:
        try:
            from PIL import Image, ImageDraw
        except ImportError:
            raise CommandError(
                "Pillow is needed for the gallery: pip install 'fileresponse[images]'."
            ) from None

        rng = random.Random(SEED + number)
        top = tuple(rng.randrange(40, 200) for _ in range(3))
        bottom = tuple(rng.randrange(40, 200) for _ in range(3))
        mask = Image.linear_gradient("L").resize((width, height))
        image = Image.composite(
            Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), mask
        )
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            radius = rng.randrange(height // 12, height // 3)
            x, y = rng.randrange(width), rng.randrange(height)
            color = tuple(rng.randrange(256) for _ in range(3))
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=color)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=88)
        return buffer.getvalue()

    return produce


GALLERY_PHOTOS = 12

# Relative path -> function producing the bytes.
SAMPLES: dict[str, Callable[[], bytes]] = {
    "binary/random-10MiB.bin": lambda: random_bytes(10 * MIB),
    "text/hello.txt": text_file,
    "images/gradient.png": gradient_png,
    "text/naïve café 日本語.txt": unicode_text,
    "nested/level-1/level-2/deep.txt": lambda: b"three folders down\n",
    **{
        f"gallery/photo-{number:02d}.jpg": gallery_photo(number)
        for number in range(1, GALLERY_PHOTOS + 1)
    },
}


class Command(BaseCommand):
    help = "Write deterministic sample files into MEDIA_ROOT for the example project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--root",
            type=Path,
            help="Directory to write into (default: settings.MEDIA_ROOT).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        root = Path(options["root"] or settings.MEDIA_ROOT)
        for relative, produce in SAMPLES.items():
            target = root / relative
            content = produce()
            if target.is_file() and target.read_bytes() == content:
                self.stdout.write(f"unchanged  {relative}")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(content)
            partial.replace(target)
            self.stdout.write(self.style.SUCCESS(f"written    {relative} ({len(content)} bytes)"))
        self.stdout.write(f"sample media ready in {root}")
