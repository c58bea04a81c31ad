"""Representation headers of a file: its type (with a charset for text) and disposition.

Pure functions: no Django, no I/O.
"""

from __future__ import annotations

import functools
import mimetypes
import posixpath
import unicodedata
from urllib.parse import quote

__all__ = ["accepted_types", "content_disposition", "guess_content_type", "with_charset"]

# As django.http.FileResponse: a compressed file is served as what it is,
# not as the type of its contents with a Content-Encoding.
_ENCODED_TYPES = {
    "bzip2": "application/x-bzip",
    "gzip": "application/gzip",
    "xz": "application/x-xz",
    "br": "application/x-brotli",
    "compress": "application/x-compress",
}


def guess_content_type(name: str, default: str = "application/octet-stream") -> str:
    """The media type of a file from its name (``mimetypes``)."""
    # mimetypes reads the last two suffixes at most (``.tar.gz``): the
    # answer is cached by those, whatever the rest of the name.
    stem, last = posixpath.splitext(name)
    return _type_of_suffixes(posixpath.splitext(stem)[1] + last) or default


@functools.lru_cache(maxsize=1024)
def _type_of_suffixes(suffixes: str) -> str | None:
    media_type, encoding = mimetypes.guess_type("file" + suffixes, strict=False)
    if encoding is not None:
        return _ENCODED_TYPES.get(encoding)
    return media_type


# Text that is not text/*: scripts, JSON and XML (RFC 9239, 8259, 7303).
_TEXT_MEDIA_TYPES = frozenset(
    {
        "application/javascript",
        "application/ecmascript",
        "application/x-javascript",
        "application/json",
        "application/xml",
    }
)


def _is_text(media_type: str) -> bool:
    """``text/*``, JavaScript, JSON, XML and the ``+json`` and ``+xml`` types."""
    media_type = media_type.strip().lower()
    top_level, _, subtype = media_type.partition("/")
    return (
        top_level == "text"
        or media_type in _TEXT_MEDIA_TYPES
        or subtype.endswith(("+json", "+xml"))
    )


@functools.lru_cache(maxsize=1024)
def with_charset(content_type: str, charset: str | None) -> str:
    """``content_type`` with ``; charset=`` added to a text type that has none.

    RFC 9110 section 8.3.2: without it, a browser guesses the encoding of
    text (often wrongly). A falsy ``charset`` leaves every type as it is.
    """
    media_type, *parameters = content_type.split(";")
    if (
        not charset
        or not _is_text(media_type)
        or any(parameter.partition("=")[0].strip().lower() == "charset" for parameter in parameters)
    ):
        return content_type
    return f"{content_type.rstrip().rstrip(';')}; charset={charset}"


@functools.lru_cache(maxsize=4096)
def content_disposition(filename: str, *, as_attachment: bool) -> str:
    """A ``Content-Disposition`` value (RFC 6266), safe for any file name.

    A name outside printable ASCII gets the exact name in ``filename*``
    (RFC 8187) and a readable ASCII ``filename`` for older clients.
    """
    disposition = "attachment" if as_attachment else "inline"
    # A name read from a file system that is not UTF-8 holds surrogate escapes:
    # its undecodable bytes become U+FFFD, so that the header is valid UTF-8.
    filename = filename.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    filename = filename.replace("\r", "").replace("\n", "").replace("\x00", "")
    if not filename:
        return disposition
    if all(_is_printable_ascii(char) for char in filename):
        return f"{disposition}; filename={_quoted_string(filename)}"
    fallback = _quoted_string(_ascii_fallback(filename))
    return f"{disposition}; filename={fallback}; filename*=UTF-8''{quote(filename, safe='')}"


def _is_printable_ascii(char: str) -> bool:
    return " " <= char <= "~"


def _ascii_fallback(filename: str) -> str:
    """``résumé.txt`` -> ``resume.txt``, ``你好.txt`` -> ``__.txt``, the extension kept.

    Accents are dropped (NFKD without the combining marks); what is left
    outside printable ASCII becomes ``_``.
    """
    stem, extension = posixpath.splitext(filename)
    return (_transliterate(stem).strip() or "download") + _transliterate(extension)


def _transliterate(text: str) -> str:
    return "".join(
        char if _is_printable_ascii(char) else "_"
        for char in unicodedata.normalize("NFKD", text)
        if not unicodedata.combining(char)
    )


def _quoted_string(value: str) -> str:
    """RFC 9110 section 5.6.4: a quoted-string with ``\\`` and ``"`` escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def accepted_types(accept: str) -> frozenset[str]:
    """The media types an ``Accept`` header names with a non-zero quality (RFC 9110 §12.5.1)."""
    types: set[str] = set()
    for item in accept.split(","):
        media_type, *parameters = (part.strip() for part in item.split(";"))
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media_type and quality > 0:
            types.add(media_type.lower())
    return frozenset(types)
