"""Representation headers derived from a file name: type and disposition.

Pure functions: no Django, no I/O.
"""

from __future__ import annotations

import mimetypes
import unicodedata
from urllib.parse import quote

__all__ = ["content_disposition", "guess_content_type"]

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
    media_type, encoding = mimetypes.guess_type(name, strict=False)
    if encoding is not None:
        return _ENCODED_TYPES.get(encoding, default)
    return media_type or default


def content_disposition(filename: str, *, as_attachment: bool) -> str:
    """A ``Content-Disposition`` value (RFC 6266), safe for any file name.

    Non-ASCII names get an ASCII fallback in ``filename`` and the exact name
    in ``filename*`` (RFC 8187, the successor of RFC 5987).
    """
    disposition = "attachment" if as_attachment else "inline"
    filename = filename.replace("\r", "").replace("\n", "").replace("\x00", "")
    if not filename:
        return disposition
    try:
        filename.encode("ascii")
    except UnicodeEncodeError:
        fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
        fallback = _quoted_string(fallback.strip() or "download")
        return f"{disposition}; filename={fallback}; filename*=UTF-8''{quote(filename, safe='')}"
    return f"{disposition}; filename={_quoted_string(filename)}"


def _quoted_string(value: str) -> str:
    """RFC 9110 section 5.6.4: a quoted-string with ``\\`` and ``"`` escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(char for char in escaped if char == "\t" or " " <= char <= "~")
    return f'"{escaped}"'
