"""The spec language: parsing tables, canonical text, round trips, output sizes."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fileresponse.derivatives.spec import (
    FORMATS,
    GRAVITIES,
    MAX_DIMENSION,
    InvalidSpec,
    Spec,
    parse_spec,
)
from fileresponse.exceptions import FileResponseError

VALID: list[tuple[str, Spec, str]] = [
    # text, parsed, canonical text
    ("300x200", Spec(width=300, height=200), "300x200"),
    ("300x", Spec(width=300), "300x"),
    ("x200", Spec(height=200), "x200"),
    ("300X200", Spec(width=300, height=200), "300x200"),
    ("0300x0200", Spec(width=300, height=200), "300x200"),
    ("300x200 fit", Spec(width=300, height=200), "300x200"),
    ("300x200 fill", Spec(300, 200, mode="fill"), "300x200 fill"),
    ("300x200 crop", Spec(300, 200, mode="crop"), "300x200 crop"),
    (
        "300x200 fill crop=center webp q=80",
        Spec(300, 200, mode="fill", format="webp", quality=80),
        "300x200 fill webp q=80",
    ),
    (
        "300x200 fill crop=north",
        Spec(300, 200, mode="fill", gravity="north"),
        "300x200 fill crop=north",
    ),
    (
        "300x200 fill crop=NE",
        Spec(300, 200, mode="fill", gravity="northeast"),
        "300x200 fill crop=northeast",
    ),
    (
        "300x200 crop gravity=sw",
        Spec(300, 200, mode="crop", gravity="southwest"),
        "300x200 crop crop=southwest",
    ),
    ("300x200 fill crop=centre", Spec(300, 200, mode="fill"), "300x200 fill"),
    ("300x200 upscale", Spec(300, 200, upscale=True), "300x200 upscale"),
    ("300x200 fill upscale", Spec(300, 200, mode="fill", upscale=True), "300x200 fill upscale"),
    ("webp", Spec(format="webp"), "webp"),
    ("jpg", Spec(format="jpeg"), "jpeg"),
    ("JPEG q=85", Spec(format="jpeg", quality=85), "jpeg q=85"),
    ("auto quality=60", Spec(format="auto", quality=60), "auto q=60"),
    ("avif q=1", Spec(format="avif", quality=1), "avif q=1"),
    ("q=100", Spec(quality=100), "q=100"),
    ("png", Spec(format="png"), "png"),
    ("fit", Spec(), "fit"),
    (f"{MAX_DIMENSION}x1", Spec(MAX_DIMENSION, 1), f"{MAX_DIMENSION}x1"),
    # order, separators and case do not matter
    (
        "q=80 webp fill 300x200",
        Spec(300, 200, mode="fill", format="webp", quality=80),
        "300x200 fill webp q=80",
    ),
    (
        "300x200,fill,webp,q=80",
        Spec(300, 200, mode="fill", format="webp", quality=80),
        "300x200 fill webp q=80",
    ),
    (
        "  300x200 \n\t FILL ,, WebP  ",
        Spec(300, 200, mode="fill", format="webp"),
        "300x200 fill webp",
    ),
]

INVALID: list[tuple[object, str]] = [
    # text, part of the reason
    ("", "empty"),
    ("   ,  ", "empty"),
    ("x", "width or a height"),
    ("0x200", "1..65535"),
    ("300x0", "1..65535"),
    ("65536x1", "1..65535"),
    ("999999999999x1", "1..65535"),
    ("-300x200", "unknown token"),
    ("300x200x100", "unknown token"),
    ("300*200", "unknown token"),
    ("\u0969\u0966\u0966x200", "unknown token"),  # Devanagari digits are not digits here
    ("300x200 300x100", "given twice"),
    ("300x200 fill crop", "given twice"),
    ("webp png", "given twice"),
    ("q=80 q=80", "given twice"),
    ("upscale upscale 300x", "given twice"),
    ("fill", "needs a width and a height"),
    ("300x fill", "needs a width and a height"),
    ("x200 crop", "needs a width and a height"),
    ("300x200 crop=north", "needs fill or crop"),
    ("300x200 fit crop=center", "needs fill or crop"),
    ("300x200 fill crop=middle", "unknown gravity"),
    ("300x200 crop upscale", "upscale does not apply"),
    ("upscale", "upscale needs a size"),
    ("webp upscale", "upscale needs a size"),
    ("q=0", "1..100"),
    ("q=101", "1..100"),
    ("q=", "1..100"),
    ("q=8.5", "1..100"),
    ("q=0080", "1..100"),
    ("png q=80", "does not apply to png"),
    ("gif", "unknown token"),
    ("blur=3", "unknown option"),
    ("300x200;rm -rf", "unknown token"),
    ("a" * 201, "longer than"),
    (b"300x200", "is text"),
    (None, "is text"),
]


@pytest.mark.parametrize(("text", "expected", "canonical"), VALID)
def test_valid_specs(text: str, expected: Spec, canonical: str) -> None:
    spec = parse_spec(text)
    assert spec == expected
    assert str(spec) == spec.canonical() == canonical
    assert parse_spec(canonical) == spec


@pytest.mark.parametrize(("text", "reason"), INVALID)
def test_invalid_specs(text: object, reason: str) -> None:
    with pytest.raises(InvalidSpec, match=reason.replace("(", r"\(").replace(".", r"\.")):
        parse_spec(text)  # type: ignore[arg-type]


def test_invalid_spec_is_a_value_error_and_a_400() -> None:
    with pytest.raises(ValueError, match="unknown token"):
        parse_spec("sepia")
    error = InvalidSpec("x")
    assert isinstance(error, FileResponseError)
    assert error.status_code == 400


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 0},
        {"width": True},
        {"width": 300.0},
        {"height": MAX_DIMENSION + 1},
        {"mode": "stretch"},
        {"gravity": "up"},
        {"format": "gif"},
        {"quality": 0},
        {"quality": False},
        {"upscale": 1},
        {"kind": "video"},
        {"width": 3, "mode": "fill"},
        {"width": 3, "height": 3, "gravity": "north"},
    ],
)
def test_constructor_checks_the_same_rules(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidSpec):
        Spec(**kwargs)  # type: ignore[arg-type]


def test_specs_are_hashable_values() -> None:
    first = parse_spec("300x200 fill webp")
    second = parse_spec("webp FILL 300x200")
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1
    assert parse_spec(first) is first
    with pytest.raises(AttributeError):
        first.width = 3  # type: ignore[misc]


def test_every_token_order_gives_the_same_spec() -> None:
    tokens = ["300x200", "fill", "crop=north", "upscale", "webp", "q=80"]
    expected = Spec(300, 200, mode="fill", gravity="north", upscale=True, format="webp", quality=80)
    for order in itertools.permutations(tokens):
        assert parse_spec(" ".join(order)) == expected
    assert str(expected) == " ".join(tokens)


sides = st.none() | st.integers(min_value=1, max_value=MAX_DIMENSION)


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    mode = draw(st.sampled_from(["fit", "fill", "crop"]))
    if mode == "fit":
        width, height = draw(sides), draw(sides)
        gravity = "center"
    else:
        width = draw(st.integers(min_value=1, max_value=MAX_DIMENSION))
        height = draw(st.integers(min_value=1, max_value=MAX_DIMENSION))
        gravity = draw(st.sampled_from(GRAVITIES))
    has_size = width is not None or height is not None
    upscale = draw(st.booleans()) if has_size and mode != "crop" else False
    image_format = draw(st.none() | st.sampled_from(FORMATS))
    quality = None if image_format == "png" else draw(st.none() | st.integers(1, 100))
    return Spec(
        width=width,
        height=height,
        mode=mode,  # type: ignore[arg-type]
        gravity=gravity,  # type: ignore[arg-type]
        upscale=upscale,
        format=image_format,
        quality=quality,
    )


@given(specs())
def test_parse_of_format_is_identity(spec: Spec) -> None:
    assert parse_spec(str(spec)) == spec
    assert parse_spec(str(spec).upper().replace(" ", ",")) == spec
    assert str(parse_spec(str(spec))) == str(spec)


@given(specs(), st.randoms(use_true_random=False))
def test_shuffled_tokens_parse_to_the_same_spec(spec: Spec, random: object) -> None:
    tokens = str(spec).split()
    random.shuffle(tokens)  # type: ignore[attr-defined]
    assert parse_spec(" ".join(tokens)) == spec


@given(st.text(max_size=60))
def test_arbitrary_text_parses_or_raises_invalid_spec(text: str) -> None:
    try:
        spec = parse_spec(text)
    except InvalidSpec:
        return
    assert parse_spec(str(spec)) == spec


OUTPUT_SIZES: list[tuple[str, tuple[int, int], tuple[int, int]]] = [
    # spec, source size, output size
    ("300x200", (4000, 3000), (267, 200)),
    ("300x200", (3000, 4000), (150, 200)),
    ("300x", (4000, 3000), (300, 225)),
    ("x200", (4000, 3000), (267, 200)),
    ("300x200", (100, 50), (100, 50)),  # no upscale
    ("300x200 upscale", (100, 50), (300, 150)),
    ("webp", (640, 480), (640, 480)),
    ("300x200 fill", (4000, 3000), (300, 200)),
    ("300x200 fill", (3000, 4000), (300, 200)),
    ("300x200 fill", (150, 400), (150, 100)),  # box's aspect ratio, within the source
    ("300x200 fill", (100, 50), (75, 50)),
    ("300x200 fill upscale", (100, 50), (300, 200)),
    ("300x200 crop", (4000, 3000), (300, 200)),
    ("300x200 crop", (100, 500), (100, 200)),
    ("1x1 fill", (1, 1), (1, 1)),
    ("10x10", (100000, 1), (10, 1)),
]


@pytest.mark.parametrize(("text", "source", "output"), OUTPUT_SIZES)
def test_output_size(text: str, source: tuple[int, int], output: tuple[int, int]) -> None:
    assert parse_spec(text).output_size(*source) == output


@given(specs(), st.integers(1, 20000), st.integers(1, 20000))
def test_output_size_bounds(spec: Spec, width: int, height: int) -> None:
    out_width, out_height = spec.output_size(width, height)
    assert out_width >= 1
    assert out_height >= 1
    if spec.width is not None:
        assert out_width <= spec.width
    if spec.height is not None:
        assert out_height <= spec.height
    if not spec.upscale:
        assert out_width <= width
        assert out_height <= height


def test_output_size_rejects_empty_sources() -> None:
    with pytest.raises(ValueError):
        Spec(300, 200).output_size(0, 10)


def test_box_size_and_scaled() -> None:
    assert parse_spec("300x200 fill").box_size == (300, 200)
    assert parse_spec("300x200 crop").box_size == (300, 200)
    assert parse_spec("300x200").box_size is None
    assert parse_spec("webp").box_size is None
    double = parse_spec("300x200 fill crop=north webp q=80").scaled(2)
    assert str(double) == "600x400 fill crop=north webp q=80"
    assert str(parse_spec("300x").scaled(1.5)) == "450x"
    assert parse_spec(f"{MAX_DIMENSION}x1").scaled(2).width == MAX_DIMENSION
    assert parse_spec("webp").scaled(2) == parse_spec("webp")
    with pytest.raises(ValueError):
        parse_spec("300x").scaled(0)


# ---------------------------------------------------------------- pdf, video, audio, command

MEDIA_VALID: list[tuple[str, Spec, str]] = [
    # text, parsed, canonical text
    ("page=2", Spec(kind="pdf", page=2), "page=2"),
    ("page=2 400x jpeg", Spec(400, kind="pdf", page=2, format="jpeg"), "page=2 400x jpeg"),
    ("JPG 400X PAGE=2", Spec(400, kind="pdf", page=2, format="jpeg"), "page=2 400x jpeg"),
    (
        "page=1,300x200,fill,crop=n,webp,quality=70",
        Spec(300, 200, "fill", "north", format="webp", quality=70, kind="pdf", page=1),
        "page=1 300x200 fill crop=north webp q=70",
    ),
    ("page=99999", Spec(kind="pdf", page=99999), "page=99999"),
    ("poster t=2s", Spec(kind="video", operation="poster", seek=2.0), "poster t=2s"),
    (
        "poster t=2s 320x180 jpeg",
        Spec(320, 180, format="jpeg", kind="video", operation="poster", seek=2),
        "poster t=2s 320x180 jpeg",
    ),
    ("t=1.5s poster", Spec(kind="video", operation="poster", seek=1.5), "poster t=1.5s"),
    ("poster t=90.000s", Spec(kind="video", operation="poster", seek=90), "poster t=90s"),
    ("poster t=0s", Spec(kind="video", operation="poster", seek=0), "poster t=0s"),
    ("poster t=0.001s", Spec(kind="video", operation="poster", seek=0.001), "poster t=0.001s"),
    ("poster t=50%", Spec(kind="video", operation="poster", seek_fraction=0.5), "poster t=50%"),
    (
        "poster t=12.50% jpg",
        Spec(format="jpeg", kind="video", operation="poster", seek_fraction=0.125),
        "poster t=12.5% jpeg",
    ),
    ("poster t=100%", Spec(kind="video", operation="poster", seek_fraction=1.0), "poster t=100%"),
    (
        "320x180 fill crop=centre poster t=1s webp q=60",
        Spec(320, 180, "fill", format="webp", quality=60, kind="video", operation="poster", seek=1),
        "poster t=1s 320x180 fill webp q=60",
    ),
    ("mp4", Spec(format="mp4", kind="video", operation="transcode"), "mp4"),
    (
        "t=10s-15s fps=30 crf=23 360P MP4",
        Spec(
            format="mp4",
            kind="video",
            operation="transcode",
            lines=360,
            crf=23,
            fps=30,
            clip=(10.0, 15.0),
        ),
        "mp4 360p crf=23 fps=30 t=10s-15s",
    ),
    (
        "webm 2160p crf=0 fps=120",
        Spec(format="webm", kind="video", operation="transcode", lines=2160, crf=0, fps=120),
        "webm 2160p crf=0 fps=120",
    ),
    (
        "webm 16p crf=63 fps=1 t=0s-0.5s",
        Spec(
            format="webm",
            kind="video",
            operation="transcode",
            lines=16,
            crf=63,
            fps=1,
            clip=(0, 0.5),
        ),
        "webm 16p crf=63 fps=1 t=0s-0.5s",
    ),
    ("mp3", Spec(format="mp3", kind="audio", operation="transcode"), "mp3"),
    (
        "t=10s-15s loudnorm 128K mp3",
        Spec(
            format="mp3",
            kind="audio",
            operation="transcode",
            bitrate=128,
            loudnorm=True,
            clip=(10, 15),
        ),
        "mp3 128k loudnorm t=10s-15s",
    ),
    ("aac 8k", Spec(format="aac", kind="audio", operation="transcode", bitrate=8), "aac 8k"),
    (
        "opus,512k",
        Spec(format="opus", kind="audio", operation="transcode", bitrate=512),
        "opus 512k",
    ),
    (
        "waveform 800x120",
        Spec(800, 120, kind="audio", operation="waveform"),
        "waveform 800x120",
    ),
    (
        "png 800x120 waveform",
        Spec(800, 120, format="png", kind="audio", operation="waveform"),
        "waveform 800x120 png",
    ),
    ("peaks 800", Spec(kind="audio", operation="peaks", points=800), "peaks 800"),
    (
        "JSON 800 PEAKS",
        Spec(format="json", kind="audio", operation="peaks", points=800),
        "peaks 800 json",
    ),
    ("peaks 1", Spec(kind="audio", operation="peaks", points=1), "peaks 1"),
    (
        "peaks 100000 json",
        Spec(format="json", kind="audio", operation="peaks", points=100000),
        "peaks 100000 json",
    ),
    ("run=grayscale", Spec(kind="command", command="grayscale"), "run=grayscale"),
    (
        "q=80 webp 300x RUN=Gray_Scale-2",
        Spec(300, format="webp", quality=80, kind="command", command="gray_scale-2"),
        "run=gray_scale-2 300x webp q=80",
    ),
    ("run=" + "a" * 40, Spec(kind="command", command="a" * 40), "run=" + "a" * 40),
    (
        "run=sepia 300x200 crop crop=se jpg",
        Spec(300, 200, "crop", "southeast", format="jpeg", kind="command", command="sepia"),
        "run=sepia 300x200 crop crop=southeast jpeg",
    ),
]

MEDIA_INVALID: list[tuple[str, str]] = [
    # text, part of the reason
    # mixed kinds name both
    ("page=2 mp3", "mixed kinds: 'page=2' is pdf, 'mp3' is audio"),
    ("poster t=2s waveform 800x120", "mixed kinds: 'poster' is video, 'waveform' is audio"),
    ("run=grayscale page=2", "mixed kinds: 'run=grayscale' is command, 'page=2' is pdf"),
    ("mp3 360p", "mixed kinds: 'mp3' is audio, '360p' is video"),
    ("loudnorm crf=23 mp4", "mixed kinds: 'loudnorm' is audio, 'crf=23' is video"),
    ("page=1 json", "mixed kinds"),
    ("mp4 mp3", "mixed kinds: 'mp4' is video, 'mp3' is audio"),
    ("mp4 webm", "format given twice"),
    ("png jpeg waveform", "format given twice"),
    ("poster poster t=1s", "operation given twice"),
    ("waveform peaks 800", "operation given twice"),
    ("page=1 page=2", "page given twice"),
    ("poster t=2s t=50%", "time given twice"),
    ("mp4 t=1s-2s t=3s-4s", "time given twice"),
    # a kind without what makes it
    ("360p", "a video spec needs poster, mp4 or webm"),
    ("crf=23 fps=30", "a video spec needs poster, mp4 or webm"),
    ("360p png", "a video spec needs poster, mp4 or webm"),
    ("128k", "an audio spec needs waveform, peaks, mp3, aac or opus"),
    ("loudnorm", "an audio spec needs waveform, peaks, mp3, aac or opus"),
    ("json", "an audio spec needs waveform, peaks, mp3, aac or opus"),
    ("poster", "poster needs a time"),
    ("poster 320x180 jpeg", "poster needs a time"),
    ("waveform", "waveform needs a width and a height"),
    ("waveform 800x", "waveform needs a width and a height"),
    ("peaks", "peaks needs a count"),
    ("peaks json", "peaks needs a count"),
    # formats of another output
    ("poster t=2s mp4", "a poster takes jpeg, png, webp, avif, auto, not mp4"),
    ("waveform 800x120 jpeg", "a waveform takes png, not jpeg"),
    ("peaks 800 png", "peaks takes json, not png"),
    ("page=2 mp4", "mixed kinds"),
    # tokens of another output
    ("mp4 320x180", "320x180 does not apply to a video transcode"),
    ("mp4 q=80", "q=80 does not apply to a video transcode"),
    ("mp3 upscale", "upscale does not apply to an audio transcode"),
    ("waveform 800x120 fill", "fill does not apply to a waveform"),
    ("waveform 800x120 png q=80", "q=80 does not apply to a waveform"),
    ("peaks 800 300x200", "300x200 does not apply to peaks"),
    ("poster t=2s 360p", "360p does not apply to a poster"),
    ("t=2s", "t=2s does not apply to an image (a time t=2s or t=50% is for poster)"),
    ("300x t=50%", "t=50% does not apply to an image"),
    ("mp4 t=2s", "t=2s does not apply to a video transcode (a time"),
    ("poster t=1s-2s", "t=1s-2s does not apply to a poster (a clip"),
    ("page=2 t=1s-2s", "t=1s-2s does not apply to a pdf page (a clip"),
    ("800", "800 does not apply to an image (a count is for peaks"),
    ("mp3 800", "800 does not apply to an audio transcode"),
    ("run=grayscale t=2s", "t=2s does not apply to a command"),
    # image rules hold for pdf, poster and command outputs
    ("page=2 fill", "fill needs a width and a height"),
    ("poster t=2s 300x crop", "crop needs a width and a height"),
    ("run=x 300x200 crop=north", "needs fill or crop"),
    ("run=grayscale 300x png q=80", "q= does not apply to png"),
    ("poster t=1s upscale", "upscale needs a size"),
    # values
    ("page=0", "'page=0': page must be 1..99999"),
    ("page=100000", "page must be 1..99999"),
    ("page=", "page must be 1..99999"),
    ("page=two", "page must be 1..99999"),
    ("page=-1", "page must be 1..99999"),
    ("poster t=2", "'t=2': a time is t=2s, t=50% or t=10s-15s"),
    ("poster t=2m", "a time is"),
    ("poster t=-2s", "a time is"),
    ("poster t=1.0001s", "a time is"),
    ("poster t=1234567s", "a time is"),
    ("poster t=1e3s", "a time is"),
    ("poster t=.5s", "a time is"),
    ("poster t=", "a time is"),
    ("poster t=0%", "a fraction is over 0% and at most 100%"),
    ("poster t=100.01%", "a fraction is over 0% and at most 100%"),
    ("poster t=12.345%", "a time is"),
    ("poster t=10%-20%", "a time is"),
    ("mp4 t=15s-10s", "'t=15s-10s': a clip ends after it starts"),
    ("mp4 t=5s-5s", "a clip ends after it starts"),
    ("mp4 t=5-10s", "a time is"),
    ("mp4 15p", "lines must be 16..4320"),
    ("mp4 4322p", "lines must be 16..4320"),
    ("mp4 361p", "'361p': lines must be even"),
    ("mp4 00360p", "lines must be 16..4320"),
    ("mp4 crf=64", "'crf=64': crf must be 0..63"),
    ("mp4 crf=", "crf must be 0..63"),
    ("mp4 fps=0", "fps must be 1..120"),
    ("mp4 fps=121", "fps must be 1..120"),
    ("mp4 fps=29.97", "fps must be 1..120"),
    ("mp3 7k", "a bitrate must be 8..512"),
    ("mp3 513k", "a bitrate must be 8..512"),
    ("peaks 0", "a count must be 1..100000"),
    ("peaks 100001", "a count must be 1..100000"),
    ("run=", "a command's name is"),
    ("run=a/b", "a command's name is"),
    ("run=grey.scale", "a command's name is"),
    ("run=" + "a" * 41, "a command's name is"),
    ("\u0969\u0966\u0966p mp4", "unknown token"),  # Devanagari digits
    ("\u0969\u0966\u0966 peaks", "unknown token"),
    ("p", "unknown token"),
    ("k", "unknown token"),
    ("transcode mp4", "unknown token"),
    ("seek=2s poster", "unknown option seek="),
    ("m4a", "unknown token"),
]


@pytest.mark.parametrize(("text", "expected", "canonical"), MEDIA_VALID)
def test_valid_media_specs(text: str, expected: Spec, canonical: str) -> None:
    spec = parse_spec(text)
    assert spec == expected
    assert (spec.kind, spec.operation) == (expected.kind, expected.operation)
    assert str(spec) == canonical
    assert parse_spec(canonical) == spec


@pytest.mark.parametrize(("text", "reason"), MEDIA_INVALID)
def test_invalid_media_specs(text: str, reason: str) -> None:
    with pytest.raises(InvalidSpec) as raised:
        parse_spec(text)
    assert reason in str(raised.value)


KIND_INFERENCE: list[tuple[str, str, str | None]] = [
    # text, kind, operation
    ("300x200 webp", "image", None),
    ("page=3", "pdf", None),
    ("run=x", "command", None),
    ("poster t=1s", "video", "poster"),
    ("webm", "video", "transcode"),
    ("mp4 crf=20", "video", "transcode"),
    ("mp4 fps=24", "video", "transcode"),
    ("mp4 720p", "video", "transcode"),
    ("aac", "audio", "transcode"),
    ("opus 64k", "audio", "transcode"),
    ("mp3 loudnorm", "audio", "transcode"),
    ("waveform 10x10", "audio", "waveform"),
    ("peaks 5", "audio", "peaks"),
    ("json peaks 5", "audio", "peaks"),
]


@pytest.mark.parametrize(("text", "kind", "operation"), KIND_INFERENCE)
def test_the_kind_is_inferred_from_the_tokens(text: str, kind: str, operation: str | None) -> None:
    spec = parse_spec(text)
    assert (spec.kind, spec.operation) == (kind, operation)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "audio"},
        {"kind": "pdf"},
        {"kind": "command"},
        {"kind": "text", "page": 1},
        {"operation": "poster", "seek": 1.0},  # a poster is of kind video
        {"kind": "video", "operation": "waveform", "width": 8, "height": 8},
        {"kind": "pdf", "operation": "transcode", "page": 1},
        {"kind": "video", "operation": "blur"},
        {"kind": "video", "operation": "poster"},
        {"kind": "video", "operation": "poster", "seek": 1.0, "seek_fraction": 0.5},
        {"kind": "video", "operation": "poster", "seek": -1.0},
        {"kind": "video", "operation": "poster", "seek": 1.0001},
        {"kind": "video", "operation": "poster", "seek": float("nan")},
        {"kind": "video", "operation": "poster", "seek": float("inf")},
        {"kind": "video", "operation": "poster", "seek": True},
        {"kind": "video", "operation": "poster", "seek": "2"},
        {"kind": "video", "operation": "poster", "seek": 1_000_000.0},
        {"kind": "video", "operation": "poster", "seek_fraction": 0.0},
        {"kind": "video", "operation": "poster", "seek_fraction": 1.5},
        {"kind": "video", "operation": "poster", "seek_fraction": 0.123456},
        {"kind": "video", "operation": "poster", "seek": 1.0, "format": "mp4"},
        {"kind": "video", "operation": "transcode", "format": "mp3"},
        {"kind": "video", "operation": "transcode", "clip": (5.0, 5.0)},
        {"kind": "video", "operation": "transcode", "clip": [1.0, 2.0]},
        {"kind": "video", "operation": "transcode", "clip": (1.0,)},
        {"kind": "video", "operation": "transcode", "clip": (1.0, "2")},
        {"kind": "video", "operation": "transcode", "lines": 361},
        {"kind": "video", "operation": "transcode", "lines": 360.0},
        {"kind": "video", "operation": "transcode", "crf": -1},
        {"kind": "video", "operation": "transcode", "fps": 0},
        {"kind": "video", "operation": "transcode", "bitrate": 128},
        {"kind": "audio", "operation": "transcode", "bitrate": 7},
        {"kind": "audio", "operation": "transcode", "loudnorm": 1},
        {"kind": "audio", "operation": "transcode", "lines": 360},
        {"kind": "audio", "operation": "peaks"},
        {"kind": "audio", "operation": "peaks", "points": 0},
        {"kind": "audio", "operation": "waveform", "width": 8},
        {"kind": "pdf", "page": 0},
        {"kind": "pdf", "page": 1, "loudnorm": True},
        {"kind": "image", "page": 1},
        {"kind": "image", "command": "x"},
        {"kind": "command", "command": "Grayscale"},
        {"kind": "command", "command": ""},
        {"kind": "command", "command": b"x"},
    ],
)
def test_constructor_checks_the_rules_of_every_kind(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidSpec):
        Spec(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", [case[0] for case in MEDIA_VALID])
def test_every_kind_has_a_name_without_its_format(text: str) -> None:
    """What :func:`~fileresponse.derivatives.keys.derivative_name` builds: the spec without its
    format is still a spec (a transcode too, whose text then drops its container)."""
    spec = parse_spec(text)
    bare = replace(spec, format=None)
    assert str(bare) == " ".join(token for token in str(spec).split() if token != spec.format)


def test_media_specs_scale_their_box_only() -> None:
    assert str(parse_spec("poster t=2s 320x180 fill").scaled(2)) == "poster t=2s 640x360 fill"
    assert str(parse_spec("page=2 400x").scaled(1.5)) == "page=2 600x"
    assert str(parse_spec("waveform 800x120").scaled(2)) == "waveform 1600x240"
    assert parse_spec("mp4 360p").scaled(2) == parse_spec("mp4 360p")
    assert parse_spec("waveform 800x120").box_size == (800, 120)
    assert parse_spec("poster t=1s 320x180").box_size is None
    assert parse_spec("mp3").box_size is None
