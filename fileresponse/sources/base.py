"""The protocol every source follows, and the conversion of user input to a source."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import IO, Protocol, runtime_checkable

__all__ = ["Source", "SourceStat", "as_source"]


@dataclass(frozen=True, slots=True)
class SourceStat:
    """What a source knows of its file without reading it.

    ``etag`` is the opaque part of a strong entity tag (no quotes), or
    ``None`` when the backend has none. ``path`` is an absolute local path
    that a server may reopen by name (``http.response.pathsend``), set only
    where no other bytes can ever appear under that name (derivatives under
    content-derived names); otherwise ``None`` and the bytes are sent from
    the source as it was stat'ed.
    """

    size: int
    mtime: float
    etag: str | None = None
    content_type: str | None = None
    path: str | None = None


@runtime_checkable
class Source(Protocol):
    """A file to serve: stat it once, then read byte ranges of it.

    ``stat``/``astat`` are called once per response, before any read, and
    may raise the errors of :mod:`fileresponse.exceptions`. Reads after a
    stat return the bytes of the version that was stat'ed, or fail.
    ``close`` releases what the source holds and may be called more than
    once; after it, reads fail.
    """

    @property
    def name(self) -> str: ...

    def stat(self) -> SourceStat: ...

    async def astat(self) -> SourceStat: ...

    def iter_range(self, start: int, length: int, chunk_size: int) -> Iterator[bytes]: ...

    def aiter_range(self, start: int, length: int, chunk_size: int) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


def as_source(file: str | os.PathLike[str] | IO[bytes] | Source, name: str | None = None) -> Source:
    """A :class:`Source` for a path, an open binary file or a source."""
    from .filesystem import FileObjectSource, FilesystemSource

    if isinstance(file, Source):
        return file
    if isinstance(file, (str, os.PathLike)):
        return FilesystemSource(file)
    if hasattr(file, "read"):
        return FileObjectSource(file, name=name)
    raise TypeError(f"cannot serve a {type(file).__name__}: give a path, an open file or a Source")
