"""From a spec's text to a :class:`~fileresponse.derivatives.spec.Spec` (cached)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import cast

from .model import (
    _COMMAND,
    _FORMAT_ALIASES,
    _GRAVITY_ALIASES,
    _TOKEN_KINDS,
    _WITHOUT_OPERATION,
    AUDIO_FORMATS,
    GRAVITIES,
    MAX_DIMENSION,
    MODES,
    VIDEO_FORMATS,
    InvalidSpec,
    Kind,
    Spec,
)

__all__ = ["parse_spec"]

_SIZE = re.compile(r"([0-9]*)x([0-9]*)")
_NUMBER = re.compile(r"[0-9]{1,3}")
_SECONDS = r"([0-9]{1,6}(?:\.[0-9]{1,3})?)s"
_SEEK = re.compile(_SECONDS)
_CLIP = re.compile(f"{_SECONDS}-{_SECONDS}")
_PERCENT = re.compile(r"([0-9]{1,3}(?:\.[0-9]{1,2})?)%")
_SEPARATORS = re.compile(r"[\s,]+")
_MAX_TEXT = 200


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
    kinds: dict[Kind, str] = {}
    for token in tokens:
        key, value = _read(token)
        said = _TOKEN_KINDS.get(str(value) if key in ("format", "operation") else key)
        if said is not None:
            kinds.setdefault(said, token)
            if len(kinds) > 1:
                first, first_token = next(iter(kinds.items()))
                raise InvalidSpec(f"mixed kinds: {first_token!r} is {first}, {token!r} is {said}")
        if key in values:
            raise InvalidSpec(f"{token!r}: {key} given twice")
        values[key] = value
    kind: Kind = next(iter(kinds), "image")
    if "gravity" in values and values.get("mode", "fit") == "fit":
        raise InvalidSpec(f"crop={values['gravity']} needs fill or crop")
    if kind in _WITHOUT_OPERATION and "operation" not in values:
        if values.get("format") not in (*VIDEO_FORMATS, *AUDIO_FORMATS):
            raise InvalidSpec(_WITHOUT_OPERATION[kind])
        values["operation"] = "transcode"
    if "time" in values:
        field, moment = cast("tuple[str, object]", values.pop("time"))
        values[field] = moment
    width, height = cast("tuple[int | None, int | None]", values.pop("size", (None, None)))
    return Spec(width=width, height=height, kind=kind, **values)  # type: ignore[arg-type]


def _read(token: str) -> tuple[str, object]:
    """The field a token sets (``time`` for the three forms of ``t=``) and its value."""
    size = _SIZE.fullmatch(token)
    if size is not None:
        width, height = (_dimension(part, token) for part in size.groups())
        if width is None and height is None:
            raise InvalidSpec(f"{token!r}: a size needs a width or a height")
        return "size", (width, height)
    if token in MODES:
        return "mode", token
    if token in ("upscale", "loudnorm"):
        return token, True
    if token in ("poster", "waveform", "peaks"):
        return "operation", token
    if token in _FORMAT_ALIASES:
        return "format", _FORMAT_ALIASES[token]
    if token.isascii() and token.isdigit():
        return "points", _integer(token, "a count", 1, 100_000, token)
    if token[:-1].isascii() and token[:-1].isdigit() and token[-1:] in ("p", "k"):
        if token.endswith("p"):
            lines = _integer(token[:-1], "lines", 16, 4320, token)
            if lines % 2:
                raise InvalidSpec(f"{token!r}: lines must be even")
            return "lines", lines
        return "bitrate", _integer(token[:-1], "a bitrate", 8, 512, token)
    if "=" not in token:
        raise InvalidSpec(f"unknown token {token!r}")
    key, _, value = token.partition("=")
    if key in ("crop", "gravity"):
        if value not in _GRAVITY_ALIASES:
            raise InvalidSpec(f"{token!r}: unknown gravity (known: {', '.join(GRAVITIES)})")
        return "gravity", _GRAVITY_ALIASES[value]
    if key in ("q", "quality"):
        if not _NUMBER.fullmatch(value) or not 1 <= int(value) <= 100:
            raise InvalidSpec(f"{token!r}: quality must be 1..100")
        return "quality", int(value)
    if key == "t":
        return "time", _read_time(value, token)
    if key in ("crf", "fps", "page"):
        low, high = {"crf": (0, 63), "fps": (1, 120), "page": (1, 99_999)}[key]
        return key, _integer(value, key, low, high, token)
    if key == "run":
        if not _COMMAND.fullmatch(value):
            raise InvalidSpec(f"{token!r}: a command's name is [a-z0-9_-]{{1,40}}")
        return "command", value
    raise InvalidSpec(f"{token!r}: unknown option {key}=")


def _read_time(value: str, token: str) -> tuple[str, object]:
    """``t=2s`` (``seek``), ``t=50%`` (``seek_fraction``) or ``t=10s-15s`` (``clip``)."""
    if seek := _SEEK.fullmatch(value):
        return "seek", float(seek[1])
    if clip := _CLIP.fullmatch(value):
        start, end = float(clip[1]), float(clip[2])
        if not start < end:
            raise InvalidSpec(f"{token!r}: a clip ends after it starts")
        return "clip", (start, end)
    if percent := _PERCENT.fullmatch(value):
        fraction = float(percent[1]) / 100
        if not 0 < fraction <= 1:
            raise InvalidSpec(f"{token!r}: a fraction is over 0% and at most 100%")
        return "seek_fraction", fraction
    raise InvalidSpec(f"{token!r}: a time is t=2s, t=50% or t=10s-15s")


def _integer(digits: str, name: str, low: int, high: int, token: str) -> int:
    if (
        not digits.isascii()
        or not digits.isdigit()
        or len(digits) > len(str(high))
        or not (low <= int(digits) <= high)
    ):
        raise InvalidSpec(f"{token!r}: {name} must be {low}..{high}")
    return int(digits)


def _dimension(digits: str, token: str) -> int | None:
    if not digits:
        return None
    if len(digits) > 5 or not 1 <= int(digits) <= MAX_DIMENSION:
        raise InvalidSpec(f"{token!r}: sides must be 1..{MAX_DIMENSION}")
    return int(digits)
