"""Sources: where the bytes of a file response come from.

One module per backend, behind the small :class:`Source` protocol
(:mod:`.base`); :func:`as_source` turns what a view gives into a source.
Optional SDKs are imported only inside their module.
"""

from __future__ import annotations

import os
from typing import IO

from .base import Source, SourceStat
from .filesystem import FileObjectSource, FilesystemSource

__all__ = ["Source", "SourceStat", "as_source"]


def as_source(file: str | os.PathLike[str] | IO[bytes] | Source, name: str | None = None) -> Source:
    """A :class:`Source` for a path, an open binary file or a source."""
    if isinstance(file, Source):
        return file
    if isinstance(file, (str, os.PathLike)):
        return FilesystemSource(file)
    if hasattr(file, "read"):
        return FileObjectSource(file, name=name)
    raise TypeError(f"cannot serve a {type(file).__name__}: give a path, an open file or a Source")
