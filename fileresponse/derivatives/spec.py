"""The spec language of derivatives: ``300x200 fill crop=north webp q=80``.

A spec is a few tokens separated by spaces or commas, in any order and any
case. :func:`parse_spec` turns the text into a :class:`Spec`, a frozen value
with one canonical text (``str(spec)``), so that equal specs give equal URLs
and equal cache keys, and ``parse_spec(str(spec)) == spec``.

======================  ==========================================================
token                   meaning
======================  ==========================================================
``300x200``             the box: width x height in pixels; ``300x`` or ``x200``
                        bound one side only
``fit`` (default)       scale to fit inside the box, keeping the aspect ratio
``fill``                scale to cover the box, then cut the overflow away (the
                        gravity says what stays); needs both sides
``crop``                cut the box out of the source at the gravity, no scaling;
                        needs both sides
``crop=center``         the gravity of ``fill`` and ``crop``: ``center`` (default),
                        ``north``, ``south``, ``east``, ``west``, ``northeast``,
                        ``northwest``, ``southeast``, ``southwest`` (or ``n``,
                        ``ne``, ...; ``centre``)
``upscale``             allow output larger than the source (off by default)
``jpeg`` ``png``        output format; ``jpg`` means ``jpeg``; ``auto`` picks by the
``webp`` ``avif``       request's ``Accept`` header; none keeps the source's family
``auto``                (JPEG stays JPEG, anything with alpha becomes PNG)
``q=80``                quality 1..100 of lossy formats (not with ``png``)
======================  ==========================================================

Canonical order: size, mode, ``crop=``, ``upscale``, format, ``q=``; defaults
(``fit``, ``crop=center``) are left out, except that a spec with nothing else
is written ``fit``. Limits (maximum output size, source pixels) are checked by
the derivative view, not here: the parser only rejects sizes no image format
can hold (above 65535).

This module is pure: no Django, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal, get_args

from fileresponse.exceptions import FileResponseError

__all__ = [
    "FORMATS",
    "GRAVITIES",
    "MAX_DIMENSION",
    "MODES",
    "Format",
    "Gravity",
    "InvalidSpec",
    "Mode",
    "Spec",
    "parse_spec",
]

Mode = Literal["fit", "fill", "crop"]
Gravity = Literal[
    "center", "north", "south", "east", "west", "northeast", "northwest", "southeast", "southwest"
]
Format = Literal["jpeg", "png", "webp", "avif", "auto"]
Kind = Literal["image"]

MODES: tuple[Mode, ...] = get_args(Mode)
GRAVITIES: tuple[Gravity, ...] = get_args(Gravity)
FORMATS: tuple[Format, ...] = get_args(Format)

#: The largest side any common image format can hold (JPEG: 65535).
MAX_DIMENSION = 65535

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
_FORMAT_ALIASES: dict[str, Format] = {**{name: name for name in FORMATS}, "jpg": "jpeg"}
_SIZE = re.compile(r"([0-9]*)x([0-9]*)")
_NUMBER = re.compile(r"[0-9]{1,3}")
_SEPARATORS = re.compile(r"[\s,]+")
_MAX_TEXT = 200


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
    the same rules). ``str(spec)`` is the canonical text.
    """

    width: int | None = None
    height: int | None = None
    mode: Mode = "fit"
    gravity: Gravity = "center"
    upscale: bool = False
    format: Format | None = None
    quality: int | None = None
    kind: Kind = "image"

    def __post_init__(self) -> None:
        _check(self)

    def __str__(self) -> str:
        return self.canonical()

    def canonical(self) -> str:
        """The canonical text: ``300x200 fill crop=north upscale webp q=80``."""
        tokens: list[str] = []
        if self.width is not None or self.height is not None:
            tokens.append(f"{self.width or ''}x{self.height or ''}")
        if self.mode != "fit":
            tokens.append(self.mode)
        if self.gravity != "center":
            tokens.append(f"crop={self.gravity}")
        if self.upscale:
            tokens.append("upscale")
        if self.format is not None:
            tokens.append(self.format)
        if self.quality is not None:
            tokens.append(f"q={self.quality}")
        return " ".join(tokens) or "fit"

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
        """The output size known from the spec alone: the box of ``fill``/``crop``.

        ``None`` for ``fit`` (the result depends on the source's aspect ratio).
        A ``fill`` of a source smaller than the box without ``upscale`` comes
        out smaller, with the box's aspect ratio; a ``crop`` of a source
        smaller than the box comes out smaller too.
        """
        if self.mode == "fit" or self.width is None or self.height is None:
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


def _int_between(value: object, low: int, high: int) -> bool:
    """Whether ``value`` is an ``int`` (not a ``bool``) in ``low..high``; specs are built from
    untrusted values too, so the types are checked at run time."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check(spec: Spec) -> None:
    """The rules of a spec, shared by the parser and the constructor."""
    if spec.kind != "image":
        raise InvalidSpec(f"unknown kind {spec.kind!r}")
    for name, side in (("width", spec.width), ("height", spec.height)):
        if side is not None and not _int_between(side, 1, MAX_DIMENSION):
            raise InvalidSpec(f"{name} must be 1..{MAX_DIMENSION}, not {side!r}")
    if spec.mode not in MODES:
        raise InvalidSpec(f"unknown mode {spec.mode!r}")
    if spec.gravity not in GRAVITIES:
        raise InvalidSpec(f"unknown gravity {spec.gravity!r}")
    if spec.format is not None and spec.format not in FORMATS:
        raise InvalidSpec(f"unknown format {spec.format!r}")
    if spec.quality is not None and not _int_between(spec.quality, 1, 100):
        raise InvalidSpec(f"quality must be 1..100, not {spec.quality!r}")
    if not isinstance(spec.upscale, bool):
        raise InvalidSpec(f"upscale must be a bool, not {spec.upscale!r}")
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


def parse_spec(text: str | Spec) -> Spec:
    """Parse a spec's text (a :class:`Spec` is returned as it is).

    Raises :class:`InvalidSpec` with a short reason.
    """
    if isinstance(text, Spec):
        return text
    if not isinstance(text, str):
        raise InvalidSpec(f"a spec is text, not {type(text).__name__}")
    return _parse_text(text)


@lru_cache(maxsize=512)
def _parse_text(text: str) -> Spec:
    """Parse (specs repeat on a page, and a :class:`Spec` is immutable: cached)."""
    if len(text) > _MAX_TEXT:
        raise InvalidSpec(f"spec longer than {_MAX_TEXT} characters")
    tokens = [token for token in _SEPARATORS.split(text.strip().lower()) if token]
    if not tokens:
        raise InvalidSpec("empty spec")
    values: dict[str, object] = {}

    def put(key: str, value: object, token: str) -> None:
        if key in values:
            raise InvalidSpec(f"{token!r}: {key} given twice")
        values[key] = value

    for token in tokens:
        size = _SIZE.fullmatch(token)
        if size is not None:
            width, height = (_dimension(part, token) for part in size.groups())
            if width is None and height is None:
                raise InvalidSpec(f"{token!r}: a size needs a width or a height")
            put("size", (width, height), token)
        elif token in MODES:
            put("mode", token, token)
        elif token == "upscale":
            put("upscale", True, token)
        elif token in _FORMAT_ALIASES:
            put("format", _FORMAT_ALIASES[token], token)
        elif "=" in token:
            key, _, value = token.partition("=")
            if key in ("crop", "gravity"):
                if value not in _GRAVITY_ALIASES:
                    raise InvalidSpec(f"{token!r}: unknown gravity (known: {', '.join(GRAVITIES)})")
                put("gravity", _GRAVITY_ALIASES[value], token)
            elif key in ("q", "quality"):
                if not _NUMBER.fullmatch(value) or not 1 <= int(value) <= 100:
                    raise InvalidSpec(f"{token!r}: quality must be 1..100")
                put("quality", int(value), token)
            else:
                raise InvalidSpec(f"{token!r}: unknown option {key}=")
        else:
            raise InvalidSpec(f"unknown token {token!r}")
    if "gravity" in values and values.get("mode", "fit") == "fit":
        raise InvalidSpec(f"crop={values['gravity']} needs fill or crop")
    width, height = values.pop("size", (None, None))  # type: ignore[misc]
    return Spec(width=width, height=height, **values)  # type: ignore[arg-type]


def _dimension(digits: str, token: str) -> int | None:
    if not digits:
        return None
    if len(digits) > 5 or not 1 <= int(digits) <= MAX_DIMENSION:
        raise InvalidSpec(f"{token!r}: sides must be 1..{MAX_DIMENSION}")
    return int(digits)
