"""Content-coding negotiation: which precompressed variant answers an ``Accept-Encoding``.

Pure functions (RFC 9110 section 12.5.3): no Django, no I/O. What is ignored,
as the RFC allows: a member whose ``q`` is not a qvalue (``q=2``, ``q=x``) is
left out, as if not listed; a request that refuses every coding on offer,
identity included (``identity;q=0``), gets the identity anyway (the RFC lets
a server disregard the field rather than answer ``406``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = ["IDENTITY", "choose_encoding", "encoding_qualities"]

IDENTITY = "identity"

#: RFC 9110 section 12.4.2: ``0``, ``0.5``, ``0.125``, ``1``, ``1.000``.
_QVALUE = re.compile(r"^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$")
#: RFC 9110 section 8.4.1.3: ``x-gzip`` is ``gzip``.
_ALIASES = {"x-gzip": "gzip"}
#: The quality of an identity the field does not name: acceptable (section 12.5.3), but
#: below every coding listed with a non-zero quality (they win ties, see choose_encoding).
_UNNAMED_IDENTITY = 0.001


def encoding_qualities(accept_encoding: str) -> Mapping[str, float]:
    """The codings an ``Accept-Encoding`` value names (lower case), each with its ``q``.

    ``"br;q=1.0, gzip;q=0.8, *;q=0"`` -> ``{"br": 1.0, "gzip": 0.8, "*": 0.0}``.
    A coding named twice keeps its highest quality.
    """
    qualities: dict[str, float] = {}
    for member in accept_encoding.split(","):
        coding, *parameters = (part.strip() for part in member.split(";"))
        coding = _ALIASES.get(coding.lower(), coding.lower())
        if not coding:
            continue
        quality: float | None = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                value = value.strip()
                quality = float(value) if _QVALUE.match(value) else None
        if quality is not None:
            qualities[coding] = max(quality, qualities.get(coding, 0.0))
    return qualities


def choose_encoding(accept_encoding: str | None, available: Sequence[str]) -> str | None:
    """The coding of ``available`` to send, or ``None`` for the identity (RFC 9110 §12.5.3).

    ``available`` lists the codings the server has, best first (``("br", "gzip")``).

    1. No ``Accept-Encoding``: the user agent has no preference; the identity is sent
       (any coding is allowed, but not all clients decode them all).
    2. A coding's quality is its own ``q``, else that of ``*``, else ``0`` (not acceptable).
    3. The identity is acceptable unless ``identity;q=0``, or ``*;q=0`` without
       ``identity``; unnamed, it ranks below every listed coding.
    4. The highest non-zero quality wins; on a tie, the first of ``available``, then the
       identity. Nothing acceptable: the identity (see the module's note).
    """
    if accept_encoding is None:
        return None
    qualities = encoding_qualities(accept_encoding)
    wildcard = qualities.get("*")
    identity = qualities.get(IDENTITY, _UNNAMED_IDENTITY if wildcard is None else wildcard)
    best, best_quality = None, identity
    for coding in available:
        quality = qualities.get(coding, 0.0 if wildcard is None else wildcard)
        # A coding wins a tie with the identity, not with a coding listed before it.
        beats = quality > best_quality or (quality == best_quality and best is None)
        if quality > 0 and beats:
            best, best_quality = coding, quality
    return best
