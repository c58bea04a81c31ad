"""Strict parsers of ``Cache-Status`` (RFC 9211, an RFC 8941 List) and ``Server-Timing`` (W3C).

Written apart from the library's serializers, so that a test reads what a
client would: anything outside the grammar raises :class:`ValueError`.
:func:`expect_diagnostics` checks a response's pair against an outcome.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

Parameters = dict[str, object]

_KEY = re.compile(r"[a-z*][a-z0-9_.*-]*")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+.^_`|~0-9A-Za-z:/-]*")
_NUMBER = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,3})?")
_HTTP_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def done(self) -> bool:
        return self.at >= len(self.text)

    def peek(self) -> str:
        return self.text[self.at] if not self.done() else ""

    def skip(self, characters: str) -> None:
        while not self.done() and self.text[self.at] in characters:
            self.at += 1

    def expect(self, character: str) -> None:
        if self.peek() != character:
            raise ValueError(f"expected {character!r} at {self.at} of {self.text!r}")
        self.at += 1

    def match(self, pattern: re.Pattern[str]) -> str:
        found = pattern.match(self.text, self.at)
        if found is None:
            raise ValueError(f"unexpected {self.text[self.at :]!r} in {self.text!r}")
        self.at = found.end()
        return found.group()

    def quoted(self) -> str:
        """RFC 8941 section 4.2.5 (a quoted-string of printable ASCII, the same escapes)."""
        self.expect('"')
        value = []
        while True:
            if self.done():
                raise ValueError(f"unterminated string in {self.text!r}")
            character = self.text[self.at]
            self.at += 1
            if character == "\\":
                escaped = self.peek()
                if escaped not in ('"', "\\"):
                    raise ValueError(f"bad escape in {self.text!r}")
                value.append(escaped)
                self.at += 1
            elif character == '"':
                return "".join(value)
            elif not " " <= character <= "~":
                raise ValueError(f"not printable ASCII in {self.text!r}")
            else:
                value.append(character)

    def bare_item(self) -> object:
        """RFC 8941 section 4.2.3.1: a String, Token, Boolean or Number (no Byte Sequence)."""
        first = self.peek()
        if first == '"':
            return self.quoted()
        if first == "?":
            self.at += 1
            value = self.match(re.compile("[01]"))
            return value == "1"
        if first == "-" or first.isdigit():
            number = self.match(_NUMBER)
            return Decimal(number) if "." in number else int(number)
        return self.match(_TOKEN)

    def parameters(self) -> Parameters:
        """RFC 8941 section 4.2.3.2; a key may not repeat here (the RFC keeps the last)."""
        parameters: Parameters = {}
        while self.peek() == ";":
            self.at += 1
            self.skip(" ")
            key = self.match(_KEY)
            if key in parameters:
                raise ValueError(f"{key!r} twice in {self.text!r}")
            value: object = True
            if self.peek() == "=":
                self.at += 1
                value = self.bare_item()
            parameters[key] = value
        return parameters


def parse_cache_status(value: str) -> list[tuple[object, Parameters]]:
    """The members of a ``Cache-Status`` value: (cache, parameters) each (RFC 8941 4.2.1)."""
    reader = _Reader(value)
    reader.skip(" ")
    members = []
    while not reader.done():
        cache = reader.bare_item()
        if not isinstance(cache, str):
            raise ValueError(f"a cache is a String or Token (RFC 9211 section 2): {value!r}")
        members.append((cache, reader.parameters()))
        reader.skip(" \t")
        if reader.done():
            break
        reader.expect(",")
        reader.skip(" \t")
        if reader.done():
            raise ValueError(f"trailing comma in {value!r}")
    return members


def parse_server_timing(value: str) -> list[tuple[str, dict[str, str]]]:
    """The metrics of a ``Server-Timing`` value: (name, parameters) each (W3C section 3)."""
    reader = _Reader(value)
    metrics = []
    while True:
        reader.skip(" \t")
        name = reader.match(_HTTP_TOKEN)
        parameters: dict[str, str] = {}
        reader.skip(" \t")
        while reader.peek() == ";":
            reader.at += 1
            reader.skip(" \t")
            key = reader.match(_HTTP_TOKEN).lower()
            reader.skip(" \t")
            reader.expect("=")
            reader.skip(" \t")
            parameters[key] = reader.quoted() if reader.peek() == '"' else reader.match(_HTTP_TOKEN)
            reader.skip(" \t")
        metrics.append((name, parameters))
        if reader.done():
            return metrics
        reader.expect(",")


#: What each outcome's ``Cache-Status`` member must say, exactly.
OUTCOMES: dict[str, Parameters] = {
    "hit": {"hit": True},
    "miss": {"fwd": "miss", "stored": True},
    "collapsed": {"fwd": "miss", "collapsed": True, "stored": True},
    "streamed": {"fwd": "miss", "detail": "streaming"},
    "streamed-collapsed": {"fwd": "miss", "collapsed": True, "detail": "streaming"},
}


def outcome_of(header: Callable[[str], str | None]) -> str | None:
    """The outcome (a key of :data:`OUTCOMES`) a response's headers say, checked; ``None``
    when it has neither field. ``header`` reads a header by name (any case)."""
    cache_status, timing = header("Cache-Status"), header("Server-Timing")
    if cache_status is None and timing is None:
        return None
    assert cache_status is not None, "Server-Timing without Cache-Status"
    assert timing is not None, "Cache-Status without Server-Timing"
    ((cache, parameters),) = parse_cache_status(cache_status)
    assert cache == "fileresponse"
    matching = [name for name, expected in OUTCOMES.items() if parameters == expected]
    assert len(matching) == 1, f"unexpected Cache-Status parameters: {parameters}"
    outcome = matching[0]
    metrics = dict(parse_server_timing(timing))
    expected_metrics = {"lookup"}
    if outcome != "hit":
        expected_metrics.add("first-byte" if outcome.startswith("streamed") else "process")
    assert set(metrics) == expected_metrics, timing
    assert parse_server_timing(timing)[0][0] == "lookup", "the look-up first"
    for name, parameters_of in metrics.items():
        duration = float(parameters_of["dur"])
        assert 0 <= duration < 120_000, timing
        assert set(parameters_of) == ({"dur"} if name == "lookup" else {"dur", "desc"}), timing
    return outcome


def milliseconds(header: Callable[[str], str | None], metric: str) -> float:
    """The ``dur`` of ``metric`` in a response's ``Server-Timing``."""
    timing = header("Server-Timing")
    assert timing is not None
    return float(dict(parse_server_timing(timing))[metric]["dur"])


def description(header: Callable[[str], str | None], metric: str) -> str:
    timing = header("Server-Timing")
    assert timing is not None
    return dict(parse_server_timing(timing))[metric]["desc"]
