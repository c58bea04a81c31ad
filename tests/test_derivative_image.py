"""The engines (Pillow, and libvips where pyvips is installed), called directly.

Every output is checked by decoding it (with Pillow). The tables run against
both engines, which share one contract; a few tests look inside one engine.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

pytest.importorskip("PIL")

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from PIL import Image, ImageChops, ImageOps

from fileresponse.derivatives.exceptions import (
    CorruptImage,
    NotAnImage,
    ProcessingError,
    SourceChanged,
    SourceTooLarge,
    UnsupportedFormat,
)
from fileresponse.derivatives.processors import Engine, get_engine
from fileresponse.derivatives.processors.image import (
    ImageJob,
    ImageResult,
    process_image,
    source_box,
)
from fileresponse.derivatives.spec import parse_spec
from tests import images

LIMITS = {"max_source_pixels": 50_000_000, "max_source_bytes": 20 * 1024 * 1024}


Run = Callable[..., ImageResult]


def load_engine(name: str) -> Engine:
    try:
        return get_engine(name)
    except ImproperlyConfigured as error:
        pytest.skip(str(error))


@pytest.fixture(params=["pillow", "vips"])
def engine(request: pytest.FixtureRequest) -> Engine:
    return load_engine(request.param)


@pytest.fixture
def run(engine: Engine) -> Run:
    """``run(data, spec, output_format="jpeg", **limits)`` with the engine under test."""

    def run(data: bytes, spec: str, output_format: str = "jpeg", **limits: int) -> ImageResult:
        job = ImageJob(
            spec=parse_spec(spec),
            output_format=output_format,
            data=data,
            engine=engine.name,
            **{**LIMITS, **limits},
        )
        return engine.process(job)

    return run


@pytest.fixture(scope="module")
def landscape() -> bytes:
    return images.jpeg((1200, 800))


# ---------------------------------------------------------------- geometry


@pytest.mark.parametrize(
    ("spec", "size"),
    [
        ("300x200", (300, 200)),
        ("300x300", (300, 200)),
        ("x100", (150, 100)),
        ("300x", (300, 200)),
        ("2000x2000", (1200, 800)),  # no upscale by default
        ("2000x2000 upscale", (2000, 1333)),
        ("300x300 fill", (300, 300)),
        ("120x400 fill crop=west", (120, 400)),
        ("2000x100 fill", (1200, 60)),  # the box's shape, as large as the source allows
        ("2000x100 fill upscale", (2000, 100)),
        ("300x300 crop", (300, 300)),
        ("2000x2000 crop", (1200, 800)),
        ("fit", (1200, 800)),
    ],
)
def test_output_size(run: Run, landscape: bytes, spec: str, size: tuple[int, int]) -> None:
    result = run(landscape, spec)
    decoded = images.decode(result.data)
    assert decoded.format == "JPEG"
    assert decoded.size == (result.width, result.height) == size
    assert parse_spec(spec).output_size(1200, 800) == size  # what templates announce


@pytest.mark.parametrize(
    ("gravity", "corner"),
    [
        ("northwest", images.TOP_LEFT),
        ("northeast", images.TOP_RIGHT),
        ("southwest", images.BOTTOM_LEFT),
        ("southeast", images.BOTTOM_RIGHT),
    ],
)
@pytest.mark.parametrize("mode", ["crop", "fill"])
def test_gravity_picks_the_corner(
    run: Run, gravity: str, corner: tuple[int, int, int], mode: str
) -> None:
    source = images.encode(images.quadrants((400, 400)), "PNG")
    # crop: a 100x100 corner; fill: 200x190 of the 400x400 scaled to cover, i.e. the source
    # cut to 400x380 at the gravity: the corner pixel is the source's corner.
    spec = f"100x100 {mode} crop={gravity}" if mode == "crop" else f"200x190 fill crop={gravity}"
    decoded = images.decode(run(source, spec, "png").data).convert("RGB")
    width, height = decoded.size
    pixels = [decoded.getpixel((x, y)) for x in (0, width - 1) for y in (0, height - 1)]
    if mode == "crop":
        assert all(images.close(pixel, corner, 2) for pixel in pixels)  # type: ignore[arg-type]
    else:
        x = 0 if "west" in gravity else width - 1
        y = 0 if "north" in gravity else height - 1
        assert images.close(decoded.getpixel((x, y)), corner, 2)  # type: ignore[arg-type]


def test_fill_center_cuts_both_sides_evenly() -> None:
    assert source_box(parse_spec("100x100 fill"), 400, 200) == (100.0, 0.0, 300.0, 200.0)
    assert source_box(parse_spec("100x100 fill crop=north"), 200, 400) == (0.0, 0.0, 200.0, 200.0)
    assert source_box(parse_spec("100x100 crop crop=se"), 400, 300) == (300.0, 200.0, 400.0, 300.0)
    assert source_box(parse_spec("100x100"), 400, 300) == (0.0, 0.0, 400.0, 300.0)


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize("output_format", ["jpeg", "png", "webp", "avif"])
def test_formats(run: Run, engine: Engine, landscape: bytes, output_format: str) -> None:
    if output_format not in engine.output_formats():
        pytest.skip(f"this {engine.name} cannot write {output_format}")
    result = run(landscape, "300x200 fill", output_format)
    decoded = images.decode(result.data)
    assert (
        decoded.format
        == {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF"}[output_format]
    )
    assert decoded.size == (300, 200)
    assert result.format == output_format


def test_avif_is_supported_here(engine: Engine) -> None:
    # The Pillow and pyvips-binary wheels of this project's environment include an AVIF
    # encoder; the view answers 400 'unsupported format' where one without it runs (see
    # test_derivative_views).
    assert "avif" in engine.output_formats()
    assert engine.output_formats() <= {"jpeg", "png", "webp", "avif"}


def test_unknown_output_format_is_refused(run: Run, landscape: bytes) -> None:
    with pytest.raises(UnsupportedFormat, match="unsupported format: gif"):
        run(landscape, "100x100", "gif")


def test_quality_changes_the_size(run: Run, landscape: bytes) -> None:
    low = run(landscape, "600x400 q=10").data
    high = run(landscape, "600x400 q=95").data
    assert len(low) < len(high)


# ---------------------------------------------------------------- orientation, metadata, color


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_and_metadata_stripped(run: Run, orientation: int) -> None:
    source = images.rotated_jpeg((400, 200), orientation)
    expected = ImageOps.exif_transpose(images.decode(source))
    result = run(source, "100x100", "jpeg")
    decoded = images.decode(result.data)
    assert decoded.size == ((100, 50) if orientation < 5 else (50, 100)), (
        "the box fits the displayed orientation"
    )
    width, height = decoded.size
    for fraction_x, fraction_y in ((0.1, 0.1), (0.9, 0.1), (0.1, 0.9), (0.9, 0.9)):
        got = decoded.getpixel((int(width * fraction_x), int(height * fraction_y)))
        want = expected.getpixel(
            (int(expected.width * fraction_x), int(expected.height * fraction_y))
        )
        assert images.close(got, want), (orientation, fraction_x, fraction_y, got, want)  # type: ignore[arg-type]
    assert not decoded.getexif(), "EXIF must be stripped"
    assert "icc_profile" not in decoded.info
    assert b"must not survive" not in result.data


def test_png_alpha_is_kept_in_png_and_webp_and_flattened_in_jpeg(run: Run) -> None:
    source = images.png_with_alpha((400, 300))
    png = images.decode(run(source, "200x150", "png").data)
    assert png.mode == "RGBA"
    assert png.getpixel((10, 75))[3] == 255
    assert png.getpixel((190, 75))[3] == 0
    webp = images.decode(run(source, "200x150", "webp").data)
    assert webp.mode == "RGBA"
    assert webp.getpixel((190, 75))[3] == 0
    jpeg = images.decode(run(source, "200x150", "jpeg").data)
    assert jpeg.mode == "RGB"
    assert images.close(jpeg.getpixel((190, 75)), (255, 255, 255), 8)  # type: ignore[arg-type]


def test_no_format_keeps_png_for_alpha(run: Run) -> None:
    # The view picks the family from the name; the engine writes what it is told.
    source = images.png_with_alpha((40, 30))
    assert images.decode(run(source, "20x15", "png").data).mode == "RGBA"


def test_cmyk_jpeg_becomes_rgb(run: Run) -> None:
    result = run(images.cmyk_jpeg((600, 400)), "300x200", "jpeg")
    decoded = images.decode(result.data)
    assert decoded.mode == "RGB"
    assert decoded.size == (300, 200)
    assert images.close(decoded.getpixel((150, 100)), (0, 255, 255), 20)  # type: ignore[arg-type]


def test_icc_profile_is_converted_to_srgb_and_dropped(run: Run) -> None:
    red = Image.new("RGB", (64, 64), (255, 0, 0))
    source = images.encode(red, "PNG", icc_profile=images.swapped_primaries_profile())
    decoded = images.decode(run(source, "32x32", "png").data)
    assert "icc_profile" not in decoded.info
    red, _, blue = decoded.convert("RGB").getpixel((16, 16))  # type: ignore[misc]
    assert blue > 200, "the profile's red primary is sRGB blue"
    assert red < 60


def test_an_srgb_profile_changes_nothing(run: Run) -> None:
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    color = (200, 120, 40)
    source = images.encode(Image.new("RGB", (64, 64), color), "PNG", icc_profile=srgb)
    decoded = images.decode(run(source, "32x32", "png").data)
    assert decoded.getpixel((16, 16)) == color


@pytest.mark.parametrize("mode", ["L", "LA", "P", "1", "I;16", "RGBA"])
def test_unusual_modes(run: Run, mode: str) -> None:
    image = images.gradient((120, 80)).convert("L" if mode == "I;16" else mode)
    if mode == "I;16":
        image = image.convert("I").point(lambda value: value * 256).convert("I;16")
    source = images.encode(image, "PNG")
    for output_format in ("png", "jpeg", "webp"):
        decoded = images.decode(run(source, "60x40", output_format).data)
        assert decoded.size == (60, 40)


def test_large_jpeg_is_drafted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow, a 4000x3000 JPEG to 300x200: decoded at 1/4 scale, then reduced and resampled."""
    source = images.jpeg((4000, 3000), quality=85)
    from PIL import JpegImagePlugin

    drafts: list[tuple[int, int]] = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(
        self: JpegImagePlugin.JpegImageFile, mode: str | None, size: tuple[int, int] | None
    ) -> object:
        result = original(self, mode, size)
        drafts.append(self.size)
        return result

    monkeypatch.setattr("PIL.JpegImagePlugin.JpegImageFile.draft", spy)
    started = time.perf_counter()
    result = process_image(ImageJob(parse_spec("300x200 fill"), "jpeg", data=source, **LIMITS))
    elapsed = time.perf_counter() - started
    assert (result.width, result.height) == (300, 200)
    assert drafts == [(1000, 750)]
    assert elapsed < 2.0


def test_large_jpeg_is_shrunk_on_load_by_vips(monkeypatch: pytest.MonkeyPatch) -> None:
    """libvips, the same job: the JPEG decoder shrinks by 4 while it decodes."""
    engine = load_engine("vips")
    from fileresponse.derivatives.processors import vips

    loads: list[dict[str, object]] = []
    original = vips._load

    def spy(source: object, **options: object) -> object:
        loads.append(options)
        return original(source, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(vips, "_load", spy)
    source = images.jpeg((4000, 3000), quality=85)
    job = ImageJob(parse_spec("300x200 fill"), "jpeg", data=source, engine="vips", **LIMITS)
    started = time.perf_counter()
    result = engine.process(job)
    elapsed = time.perf_counter() - started
    assert (result.width, result.height) == (300, 200)
    assert images.decode(result.data).size == (300, 200)
    assert loads == [{}, {"shrink": 4}]  # the header, then the pixels at 1000x750
    assert elapsed < 2.0


# ---------------------------------------------------------------- bad input


def _truncated() -> bytes:
    data = images.jpeg((600, 400))
    return data[: len(data) // 2]


def _garbled_jpeg() -> bytes:
    import random

    data = bytearray(images.jpeg((600, 400)))
    noise = random.Random(2)
    start = len(data) // 3
    data[start : start + 400] = bytes(noise.randrange(256) for _ in range(400))
    return bytes(data)


BAD_INPUT = [
    ("empty", b"", {}, NotAnImage),
    ("text", b"hello, I am not an image\n" * 10, {}, NotAnImage),
    ("html", b"<!doctype html><html><body>nope</body></html>", {}, NotAnImage),
    ("gif header only", b"GIF89a" + b"\x00" * 50, {}, NotAnImage),
    ("truncated jpeg", _truncated(), {}, CorruptImage),
    ("garbled jpeg", _garbled_jpeg(), {}, CorruptImage),
    ("png bomb", images.png_bomb(30_000), {}, SourceTooLarge),
    (
        "pixels over the limit",
        images.jpeg((400, 300)),
        {"max_source_pixels": 100_000},
        SourceTooLarge,
    ),
    ("bytes over the limit", images.jpeg((400, 300)), {"max_source_bytes": 1000}, SourceTooLarge),
    # A format Pillow reads but the engine refuses unread.
    ("ico", images.encode(Image.new("RGB", (32, 32)), "ICO"), {}, NotAnImage),
]


@pytest.mark.parametrize(
    ("data", "limits", "error"),
    [case[1:] for case in BAD_INPUT],
    ids=[case[0] for case in BAD_INPUT],
)
def test_bad_input(
    run: Run, data: bytes, limits: dict[str, int], error: type[ProcessingError]
) -> None:
    with pytest.raises(error) as raised:
        run(data, "100x100", "jpeg", **limits)
    reason = str(raised.value)
    assert 0 < len(reason) < 100
    assert "\n" not in reason
    assert 400 <= raised.value.status_code < 500


def test_bomb_is_refused_before_decoding(run: Run) -> None:
    """A 900-megapixel header costs no memory: refused from the header alone."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(SourceTooLarge, match="too large"):
        run(images.png_bomb(30_000), "100x100")
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert after - before < 100 * 1024  # KiB: far less than the 900 MB of pixels


def test_errors_pickle() -> None:
    """Errors cross the process pool's boundary unchanged."""
    import pickle

    for error in (NotAnImage("x"), SourceTooLarge("y"), UnsupportedFormat("z")):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)


def test_path_source(tmp_path: object, landscape: bytes) -> None:
    import pathlib

    assert isinstance(tmp_path, pathlib.Path)
    path = tmp_path / "photo.jpg"
    path.write_bytes(landscape)
    job = ImageJob(parse_spec("120x80"), "webp", path=str(path), **LIMITS)
    assert images.decode(process_image(job).data).size == (120, 80)
    with pytest.raises(SourceChanged, match="gone"):
        process_image(ImageJob(parse_spec("120x80"), "webp", path=str(path) + ".x", **LIMITS))


def test_path_source_replaced_since_its_stat(tmp_path: Path, landscape: bytes) -> None:
    """The worker opens the path again: another file there (a new inode) is refused."""
    path = tmp_path / "photo.jpg"
    path.write_bytes(landscape)
    info = path.stat()
    identity = (info.st_dev, info.st_ino)
    job = ImageJob(parse_spec("120x80"), "webp", path=str(path), identity=identity, **LIMITS)
    assert images.decode(process_image(job).data).size == (120, 80)
    replacement = tmp_path / "other.jpg"
    replacement.write_bytes(landscape)
    os.replace(replacement, path)
    with pytest.raises(SourceChanged, match="replaced"):
        process_image(job)


# ---------------------------------------------------------------- libvips only


def _vips_native() -> bytes:
    import tempfile

    import pyvips

    with tempfile.TemporaryDirectory() as directory:
        path = f"{directory}/image.v"
        pyvips.Image.black(16, 16).write_to_file(path)
        with open(path, "rb") as file:
            return file.read()


VIPS_REFUSED = [
    # Formats libvips reads that the engine refuses unread (not in INPUT_LOADERS).
    ("vips native", _vips_native),
    ("matrix text", lambda: b"2 2\n1 2\n3 4\n"),
    ("ppm", lambda: b"P6\n2 2\n255\n" + bytes(12)),
    # What Pillow reads and libvips does not: a difference between the engines.
    ("bmp", lambda: images.encode(Image.new("RGB", (32, 32)), "BMP")),
]


@pytest.mark.parametrize(
    "make", [case[1] for case in VIPS_REFUSED], ids=[case[0] for case in VIPS_REFUSED]
)
def test_vips_refuses_other_loaders(make: Callable[[], bytes]) -> None:
    engine = load_engine("vips")
    job = ImageJob(parse_spec("10x10"), "png", data=make(), engine="vips", **LIMITS)
    with pytest.raises(NotAnImage, match="not an image of a supported format"):
        engine.process(job)


def test_vips_reads_a_path_as_it_is(tmp_path: Any) -> None:
    """A file name with ``[...]`` is a name, not libvips load options."""
    engine = load_engine("vips")
    path = tmp_path / "photo[shrink=8].jpg"
    path.write_bytes(images.jpeg((400, 200)))
    job = ImageJob(parse_spec("200x100"), "png", path=str(path), engine="vips", **LIMITS)
    assert images.decode(engine.process(job).data).size == (200, 100)


@pytest.mark.parametrize(
    "spec", ["300x200 fill", "300x300 fill crop=north", "400x", "250x250 crop"]
)
def test_the_engines_agree(spec: str) -> None:
    """The same job gives the same picture from both engines (up to resampling)."""
    pillow, vips = load_engine("pillow"), load_engine("vips")
    source = images.encode(images.quadrants((1200, 800)), "JPEG", quality=95)
    outputs = [
        images.decode(
            engine.process(
                ImageJob(parse_spec(spec), "png", data=source, engine=engine.name, **LIMITS)
            ).data
        ).convert("RGB")
        for engine in (pillow, vips)
    ]
    assert outputs[0].size == outputs[1].size
    difference = ImageChops.difference(*outputs).convert("L")
    mean = sum(index * count for index, count in enumerate(difference.histogram()))
    assert mean / (outputs[0].width * outputs[0].height) < 4
