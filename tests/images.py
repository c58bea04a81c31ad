"""Source images for the derivative tests, made here (no downloads, deterministic)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

__all__ = [
    "BOTTOM_LEFT",
    "BOTTOM_RIGHT",
    "TOP_LEFT",
    "TOP_RIGHT",
    "close",
    "cmyk_jpeg",
    "decode",
    "gradient",
    "jpeg",
    "png_bomb",
    "png_with_alpha",
    "quadrants",
    "rotated_jpeg",
    "swapped_primaries_profile",
]


#: The colors of the four quadrants of :func:`quadrants`.
TOP_LEFT, TOP_RIGHT, BOTTOM_LEFT, BOTTOM_RIGHT = (
    (220, 30, 30),
    (30, 200, 30),
    (30, 30, 220),
    (240, 240, 240),
)


def quadrants(size: tuple[int, int]) -> Image.Image:
    """Four flat quadrants (red, green / blue, white): orientation and gravity show."""
    width, height = size
    image = Image.new("RGB", size, BOTTOM_RIGHT)
    image.paste(TOP_LEFT, (0, 0, width // 2, height // 2))
    image.paste(TOP_RIGHT, (width // 2, 0, width, height // 2))
    image.paste(BOTTOM_LEFT, (0, height // 2, width // 2, height))
    return image


def gradient(size: tuple[int, int]) -> Image.Image:
    """A smooth RGB image (realistic for JPEG)."""
    horizontal = Image.linear_gradient("L").rotate(90).resize(size)
    vertical = Image.linear_gradient("L").resize(size)
    return Image.merge("RGB", (horizontal, vertical, Image.new("L", size, 128)))


def close(color: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(color[:3], expected[:3], strict=True))


def encode(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def jpeg(size: tuple[int, int] = (1200, 800), quality: int = 90, **options: object) -> bytes:
    return encode(gradient(size), "JPEG", quality=quality, **options)


def rotated_jpeg(size: tuple[int, int], orientation: int) -> bytes:
    """Quadrants stored ``size`` wide and high, with an EXIF Orientation tag (and a comment)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010E] = "a description that must not survive"
    return encode(quadrants(size), "JPEG", quality=95, exif=exif.tobytes())


def png_with_alpha(size: tuple[int, int] = (400, 300)) -> bytes:
    """RGBA: opaque left half, fully transparent right half."""
    image = gradient(size).convert("RGBA")
    alpha = Image.new("L", size, 255)
    alpha.paste(0, (size[0] // 2, 0, size[0], size[1]))
    image.putalpha(alpha)
    return encode(image, "PNG")


def cmyk_jpeg(size: tuple[int, int] = (600, 400)) -> bytes:
    """A CMYK JPEG (as print workflows write), pure cyan."""
    return encode(Image.new("CMYK", size, (255, 0, 0, 0)), "JPEG", quality=90)


def png_bomb(side: int = 30_000) -> bytes:
    """A tiny PNG whose header claims ``side`` x ``side`` pixels of greyscale."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * side
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(64)) + compressor.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# ---------------------------------------------------------------- an ICC profile


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \x00\x00\x00\x00" + _s15(x) + _s15(y) + _s15(z)


def swapped_primaries_profile() -> bytes:
    """An RGB display profile whose red and blue primaries are swapped.

    Converted to sRGB by it, pure red becomes blue: a plain test that an
    embedded profile is applied. (An ICC v2 matrix/TRC profile, built by hand.)
    """
    description = b"Swapped primaries (test)\x00"
    desc = (
        b"desc\x00\x00\x00\x00"
        + struct.pack(">I", len(description))
        + description
        + b"\x00" * 8  # no Unicode description
        + b"\x00" * 3
        + b"\x00" * 67  # no ScriptCode description
    )
    gamma = b"curv\x00\x00\x00\x00" + struct.pack(">IH", 1, 0x0233) + b"\x00\x00"
    # sRGB's D50-adapted primaries, red and blue exchanged.
    tags = [
        (b"desc", desc),
        (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz(0.1431, 0.0606, 0.7141)),
        (b"gXYZ", _xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", _xyz(0.4360, 0.2225, 0.0139)),
        (b"rTRC", gamma),
        (b"gTRC", gamma),
        (b"bTRC", gamma),
    ]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table = struct.pack(">I", len(tags))
    data = b""
    for signature, payload in tags:
        while len(payload) % 4:
            payload += b"\x00"
        table += signature + struct.pack(">II", offset + len(data), len(payload))
        data += payload
    size = 128 + table_size + len(data)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\x00" * 24  # platform, flags, manufacturer, model, attributes
        + struct.pack(">I", 0)  # rendering intent
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + b"lcms"
        + b"\x00" * 44
    )
    assert len(header) == 128, len(header)
    return header + table + data
