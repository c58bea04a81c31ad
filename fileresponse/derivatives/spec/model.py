"""The :class:`Spec` value: its fields, rules and canonical text."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final, Literal, get_args

from fileresponse.exceptions import FileResponseError

__all__ = [
    "ALL_FORMATS",
    "AUDIO_FORMATS",
    "FORMATS",
    "GRAVITIES",
    "KINDS",
    "MAX_DIMENSION",
    "MODES",
    "OPERATIONS",
    "ORDERS",
    "VIDEO_FORMATS",
    "Format",
    "Gravity",
    "InvalidSpec",
    "Kind",
    "Mode",
    "Operation",
    "Spec",
]

Mode = Literal["fit", "fill", "crop"]
Gravity = Literal[
    "center", "north", "south", "east", "west", "northeast", "northwest", "southeast", "southwest"
]
Format = Literal["jpeg", "png", "webp", "avif", "auto", "mp4", "webm", "mp3", "aac", "opus", "json"]
Kind = Literal["image", "video", "audio", "pdf", "command"]
Operation = Literal["poster", "transcode", "waveform", "peaks"]

MODES: tuple[Mode, ...] = get_args(Mode)
GRAVITIES: tuple[Gravity, ...] = get_args(Gravity)
KINDS: tuple[Kind, ...] = get_args(Kind)
OPERATIONS: tuple[Operation, ...] = get_args(Operation)
#: The image formats: of image, pdf, poster and command specs.
FORMATS: tuple[Format, ...] = ("jpeg", "png", "webp", "avif", "auto")
VIDEO_FORMATS: tuple[Format, ...] = ("mp4", "webm")
AUDIO_FORMATS: tuple[Format, ...] = ("mp3", "aac", "opus")
#: Every format, as ``Format`` spells them.
ALL_FORMATS: tuple[Format, ...] = get_args(Format)

#: The largest side any common image format can hold (JPEG: 65535).
MAX_DIMENSION = 65535
#: The latest time of a poster or a clip, in seconds (written to the millisecond).
_MAX_SECONDS: Final = 999_999.999

_IMAGE_TOKENS: Final = ("size", "mode", "gravity", "upscale", "format", "quality")
#: The token groups of each (kind, operation), in the order of the canonical text.
ORDERS: Final[dict[tuple[Kind, Operation | None], tuple[str, ...]]] = {
    ("image", None): _IMAGE_TOKENS,
    ("pdf", None): ("page", *_IMAGE_TOKENS),
    ("command", None): ("command", *_IMAGE_TOKENS),
    ("video", "poster"): ("operation", "time", *_IMAGE_TOKENS),
    ("video", "transcode"): ("format", "lines", "crf", "fps", "clip"),
    ("audio", "transcode"): ("format", "bitrate", "loudnorm", "clip"),
    ("audio", "waveform"): ("operation", "size", "format"),
    ("audio", "peaks"): ("operation", "points", "format"),
}
#: What each (kind, operation) is called in reasons, and the formats it takes.
_SHAPES: Final[dict[tuple[Kind, Operation | None], tuple[str, tuple[Format, ...]]]] = {
    ("image", None): ("an image", FORMATS),
    ("pdf", None): ("a pdf page", FORMATS),
    ("command", None): ("a command", FORMATS),
    ("video", "poster"): ("a poster", FORMATS),
    ("video", "transcode"): ("a video transcode", VIDEO_FORMATS),
    ("audio", "transcode"): ("an audio transcode", AUDIO_FORMATS),
    ("audio", "waveform"): ("a waveform", ("png",)),
    ("audio", "peaks"): ("peaks", ("json",)),
}
_WITHOUT_OPERATION: Final[dict[str, str]] = {
    "video": "a video spec needs poster, mp4 or webm",
    "audio": "an audio spec needs waveform, peaks, mp3, aac or opus",
}
_HINTS: Final = {
    "time": " (a time t=2s or t=50% is for poster)",
    "clip": " (a clip t=10s-15s is for mp4, webm, mp3, aac, opus)",
    "points": " (a count is for peaks: peaks 800)",
}

_GRAVITY_ALIASES: dict[str, Gravity] = {
    **{gravity: gravity for gravity in GRAVITIES},
    "centre": "center",
    "c": "center",
    "n": "north",
    "s": "south",
    "e": "east",
    "w": "west",
    "ne": "northeast",
    "nw": "northwest",
    "se": "southeast",
    "sw": "southwest",
}
_FORMAT_ALIASES: dict[str, Format] = {**{name: name for name in ALL_FORMATS}, "jpg": "jpeg"}
#: The kind a token says, when it says one.
_TOKEN_KINDS: Final[dict[str, Kind]] = {
    **dict.fromkeys(("poster", "mp4", "webm", "lines", "crf", "fps"), "video"),
    **dict.fromkeys(
        ("mp3", "aac", "opus", "json", "bitrate", "loudnorm", "waveform", "peaks"), "audio"
    ),
    "page": "pdf",
    "command": "command",
}
_COMMAND = re.compile(r"[a-z0-9_-]{1,40}")


class InvalidSpec(FileResponseError, ValueError):
    """A spec that cannot be parsed or makes no sense; the message says why.

    The derivative view answers ``400`` to it; template tags raise it in
    ``DEBUG``. A :class:`ValueError` too, for callers that know nothing of
    this library.
    """

    status_code = 400


@dataclass(frozen=True, slots=True)
class Spec:
    """What to make of a source: a canonical, hashable value.

    Build one with :func:`parse_spec`, or directly (the constructor checks
    the same rules; it takes the kind and the operation as given, and a
    transcode without its format, which :mod:`~fileresponse.derivatives.keys`
    builds for a derivative's name). ``str(spec)`` is the canonical text.
    """

    width: int | None = None
    height: int | None = None
    mode: Mode = "fit"
    gravity: Gravity = "center"
    upscale: bool = False
    format: Format | None = None
    quality: int | None = None
    kind: Kind = "image"
    operation: Operation | None = None
    #: Seconds into the source (a poster).
    seek: float | None = None
    #: A fraction of the source's duration, ``0 < f <= 1`` (a poster).
    seek_fraction: float | None = None
    #: ``(start, end)`` in seconds (a transcode).
    clip: tuple[float, float] | None = None
    #: Output height of a video transcode.
    lines: int | None = None
    crf: int | None = None
    fps: int | None = None
    #: kbit/s of an audio transcode.
    bitrate: int | None = None
    loudnorm: bool = False
    #: How many values ``peaks`` gives.
    points: int | None = None
    #: 1-based page of a pdf.
    page: int | None = None
    #: The name of a command (``run=``).
    command: str | None = None

    def __post_init__(self) -> None:
        _check(self)

    def __str__(self) -> str:
        return self.canonical()

    def canonical(self) -> str:
        """The canonical text: ``300x200 fill crop=north upscale webp q=80``, ``mp4 360p``."""
        tokens = [_TOKENS[group](self) for group in ORDERS[self.kind, self.operation]]
        text = " ".join(token for token in tokens if token is not None)
        return text or ("fit" if self.kind == "image" else "")

    def scaled(self, factor: float) -> Spec:
        """The same spec with the box ``factor`` times larger (``2`` for ``2x`` in a ``srcset``).

        Sides are rounded and kept within 1..:data:`MAX_DIMENSION`.
        """
        if not factor > 0:
            raise ValueError(f"factor must be positive, not {factor}")

        def scale(side: int | None) -> int | None:
            return None if side is None else max(1, min(round(side * factor), MAX_DIMENSION))

        return replace(self, width=scale(self.width), height=scale(self.height))

    @property
    def box_size(self) -> tuple[int, int] | None:
        """The output size known from the spec alone: the box of ``fill``/``crop``/``waveform``.

        ``None`` for ``fit`` (the result depends on the source's aspect ratio).
        A ``fill`` of a source smaller than the box without ``upscale`` comes
        out smaller, with the box's aspect ratio; a ``crop`` of a source
        smaller than the box comes out smaller too.
        """
        if self.width is None or self.height is None:
            return None
        if self.mode == "fit" and self.operation != "waveform":
            return None
        return (self.width, self.height)

    def output_size(self, source_width: int, source_height: int) -> tuple[int, int]:
        """The size of the result for a source of the given size.

        - ``fit``: the largest size inside the box with the source's aspect
          ratio, no larger than the source unless ``upscale``.
        - ``fill``: the box; without ``upscale`` a source smaller than the box
          gives the largest size with the box's aspect ratio that the source
          can cover.
        - ``crop``: the box, clipped to the source.
        """
        if source_width < 1 or source_height < 1:
            raise ValueError(f"bad source size {source_width}x{source_height}")
        if self.mode == "crop":
            assert self.width is not None
            assert self.height is not None
            return (min(self.width, source_width), min(self.height, source_height))
        if self.mode == "fill":
            assert self.width is not None
            assert self.height is not None
            factor = min(source_width / self.width, source_height / self.height)
            if self.upscale or factor >= 1:
                return (self.width, self.height)
            return (
                max(1, min(source_width, round(self.width * factor))),
                max(1, min(source_height, round(self.height * factor))),
            )
        ratios = [
            side / source_side
            for side, source_side in ((self.width, source_width), (self.height, source_height))
            if side is not None
        ]
        factor = min(ratios, default=1.0)
        if not self.upscale:
            factor = min(factor, 1.0)
        return (
            max(1, round(source_width * factor)),
            max(1, round(source_height * factor)),
        )


def _decimal(value: float, places: int) -> str:
    """``value`` with at most ``places`` decimals and no trailing zeros: ``2``, ``1.5``."""
    text = f"{abs(value):.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _seconds(value: float) -> str:
    return f"{_decimal(value, 3)}s"


def _percent(fraction: float) -> str:
    return f"{_decimal(fraction * 100, 2)}%"


def _time(spec: Spec) -> str | None:
    if spec.seek is not None:
        return f"t={_seconds(spec.seek)}"
    if spec.seek_fraction is not None:
        return f"t={_percent(spec.seek_fraction)}"
    return None


def _clip(spec: Spec) -> str | None:
    if spec.clip is None:
        return None
    start, end = spec.clip
    return f"t={_seconds(start)}-{_seconds(end)}"


def _size(spec: Spec) -> str | None:
    if spec.width is None and spec.height is None:
        return None
    return f"{spec.width or ''}x{spec.height or ''}"


def _option(key: str, value: object) -> str | None:
    return None if value is None else f"{key}={value}"


def _suffixed(value: int | None, suffix: str) -> str | None:
    return None if value is None else f"{value}{suffix}"


#: Each token group's text in a spec, ``None`` when it has its default.
_TOKENS: Final[dict[str, Callable[[Spec], str | None]]] = {
    "size": _size,
    "mode": lambda spec: None if spec.mode == "fit" else spec.mode,
    "gravity": lambda spec: None if spec.gravity == "center" else f"crop={spec.gravity}",
    "upscale": lambda spec: "upscale" if spec.upscale else None,
    "format": lambda spec: spec.format,
    "quality": lambda spec: _option("q", spec.quality),
    "operation": lambda spec: None if spec.operation == "transcode" else spec.operation,
    "time": _time,
    "clip": _clip,
    "lines": lambda spec: _suffixed(spec.lines, "p"),
    "crf": lambda spec: _option("crf", spec.crf),
    "fps": lambda spec: _option("fps", spec.fps),
    "bitrate": lambda spec: _suffixed(spec.bitrate, "k"),
    "loudnorm": lambda spec: "loudnorm" if spec.loudnorm else None,
    "points": lambda spec: None if spec.points is None else str(spec.points),
    "page": lambda spec: _option("page", spec.page),
    "command": lambda spec: _option("run", spec.command),
}


def _int_between(value: object, low: int, high: int) -> bool:
    """Whether ``value`` is an ``int`` (not a ``bool``) in ``low..high``; specs are built from
    untrusted values too, so the types are checked at run time."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_seconds(value: object) -> bool:
    """Seconds the text can hold: a number in 0..999999.999, to the millisecond."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0 <= value <= _MAX_SECONDS
        and float(_decimal(value, 3)) == value
    )


def _is_fraction(value: object) -> bool:
    """A fraction the text can hold: ``0 < f <= 1``, to 0.01 percent."""
    return (
        isinstance(value, float | int)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 < value <= 1
        and float(_decimal(value * 100, 2)) / 100 == value
    )


def _is_clip(value: object) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and all(_is_seconds(end) for end in value)


def _is_command(value: object) -> bool:
    return isinstance(value, str) and _COMMAND.fullmatch(value) is not None


def _check(spec: Spec) -> None:
    """The rules of a spec, shared by the parser and the constructor."""
    _check_values(spec)
    shape = (spec.kind, spec.operation)
    if shape not in ORDERS:
        if spec.operation is None:
            raise InvalidSpec(_WITHOUT_OPERATION[spec.kind])
        raise InvalidSpec(f"{spec.operation} does not apply to {spec.kind}")
    what, formats = _SHAPES[shape]
    order = ORDERS[shape]
    for group, token_of in _TOKENS.items():
        if group not in order:
            token = token_of(spec)
            if token is not None:
                raise InvalidSpec(f"{token} does not apply to {what}{_HINTS.get(group, '')}")
    if spec.format is not None and spec.format not in formats:
        raise InvalidSpec(f"{what} takes {', '.join(formats)}, not {spec.format}")
    if "mode" in order:
        _check_image(spec)
    if spec.operation == "poster" and spec.seek is None and spec.seek_fraction is None:
        raise InvalidSpec("poster needs a time: t=2s or t=50%")
    if spec.operation == "waveform" and (spec.width is None or spec.height is None):
        raise InvalidSpec("waveform needs a width and a height, e.g. waveform 800x120")
    if spec.operation == "peaks" and spec.points is None:
        raise InvalidSpec("peaks needs a count, e.g. peaks 800")
    if spec.kind == "pdf" and spec.page is None:
        raise InvalidSpec("a pdf spec needs page=, e.g. page=1")
    if spec.kind == "command" and spec.command is None:
        raise InvalidSpec("a command spec needs run=, e.g. run=grayscale")


def _check_values(spec: Spec) -> None:
    """The type and the range of every field."""
    if spec.kind not in KINDS:
        raise InvalidSpec(f"unknown kind {spec.kind!r}")
    if spec.operation is not None and spec.operation not in OPERATIONS:
        raise InvalidSpec(f"unknown operation {spec.operation!r}")
    for name, side in (("width", spec.width), ("height", spec.height)):
        if side is not None and not _int_between(side, 1, MAX_DIMENSION):
            raise InvalidSpec(f"{name} must be 1..{MAX_DIMENSION}, not {side!r}")
    if spec.mode not in MODES:
        raise InvalidSpec(f"unknown mode {spec.mode!r}")
    if spec.gravity not in GRAVITIES:
        raise InvalidSpec(f"unknown gravity {spec.gravity!r}")
    if spec.format is not None and spec.format not in ALL_FORMATS:
        raise InvalidSpec(f"unknown format {spec.format!r}")
    for name, flag in (("upscale", spec.upscale), ("loudnorm", spec.loudnorm)):
        if not isinstance(flag, bool):
            raise InvalidSpec(f"{name} must be a bool, not {flag!r}")
    for name, value, low, high in (
        ("quality", spec.quality, 1, 100),
        ("lines", spec.lines, 16, 4320),
        ("crf", spec.crf, 0, 63),
        ("fps", spec.fps, 1, 120),
        ("bitrate", spec.bitrate, 8, 512),
        ("points", spec.points, 1, 100_000),
        ("page", spec.page, 1, 99_999),
    ):
        if value is not None and not _int_between(value, low, high):
            raise InvalidSpec(f"{name} must be {low}..{high}, not {value!r}")
    if spec.lines is not None and spec.lines % 2:
        raise InvalidSpec(f"lines must be even, not {spec.lines}")
    if spec.seek is not None and not _is_seconds(spec.seek):
        raise InvalidSpec(f"seek must be 0..{_MAX_SECONDS} s to the millisecond, not {spec.seek!r}")
    if spec.seek_fraction is not None and not _is_fraction(spec.seek_fraction):
        raise InvalidSpec(
            f"seek_fraction must be over 0 and at most 1, to 0.0001, not {spec.seek_fraction!r}"
        )
    if spec.seek is not None and spec.seek_fraction is not None:
        raise InvalidSpec("a poster takes one time: seek or seek_fraction")
    if spec.clip is not None:
        if not _is_clip(spec.clip):
            raise InvalidSpec(f"clip must be (start, end) in seconds, not {spec.clip!r}")
        if not spec.clip[0] < spec.clip[1]:
            raise InvalidSpec(f"{_clip(spec)}: a clip ends after it starts")
    if spec.command is not None and not _is_command(spec.command):
        raise InvalidSpec(f"a command's name is [a-z0-9_-]{{1,40}}, not {spec.command!r}")


def _check_image(spec: Spec) -> None:
    """The rules of the image tokens."""
    both_sides = spec.width is not None and spec.height is not None
    if spec.mode in ("fill", "crop") and not both_sides:
        raise InvalidSpec(f"{spec.mode} needs a width and a height, e.g. 300x200 {spec.mode}")
    if spec.gravity != "center" and spec.mode == "fit":
        raise InvalidSpec(f"crop={spec.gravity} needs fill or crop")
    if spec.upscale and spec.mode == "crop":
        raise InvalidSpec("upscale does not apply to crop, which does not scale")
    if spec.upscale and spec.width is None and spec.height is None:
        raise InvalidSpec("upscale needs a size")
    if spec.quality is not None and spec.format == "png":
        raise InvalidSpec("q= does not apply to png, which is lossless")
