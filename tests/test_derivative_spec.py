"""The spec language: parsing tables, canonical text, round trips, output sizes."""

from __future__ import annotations

import itertools

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
