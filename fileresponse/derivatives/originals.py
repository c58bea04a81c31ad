"""The source of a derivative, as stat'ed at request time: its version, size and place.

A source on this machine is read by the worker process from its path (which
checks it opened the file that was stat'ed); any other is copied first, in
bounded memory (:mod:`~fileresponse.derivatives.spool`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fileresponse.sources import Source, SourceStat
from fileresponse.sources.filesystem import FilesystemSource
from fileresponse.sources.storage import storage_source

from .exceptions import SourceTooLarge
from .keys import version_of

if TYPE_CHECKING:
    from django.core.files.storage import Storage

__all__ = ["SourceState", "astat_original", "stat_original"]


@dataclass(frozen=True, slots=True)
class SourceState:
    """A source as stat'ed at request time: enough for the cache key and the job."""

    storage_alias: str
    name: str
    version: str
    size: int
    #: A local path the worker can read, or ``None`` (then the source is copied first:
    #: :mod:`~fileresponse.derivatives.spool`).
    path: str | None
    #: ``(st_dev, st_ino)`` of the file stat'ed at ``path``: the worker checks that it
    #: opened the same file (not one put in its place, or reached through a new symlink).
    identity: tuple[int, int] | None = None


def stat_original(storage: Storage, storage_alias: str, name: str, max_bytes: int) -> SourceState:
    """Stat a source (blocking: call it in the I/O threads), within ``max_bytes``.

    Raises :class:`~fileresponse.exceptions.SourceNotFound` (``404``) and the
    like, and :class:`~fileresponse.derivatives.exceptions.SourceTooLarge`
    from the stat alone, before any byte is read.
    """
    source = storage_source(storage, name)
    try:
        stat = source.stat()
    finally:
        source.close()
    return _state(source, stat, storage_alias, name, max_bytes)


async def astat_original(
    storage: Storage, storage_alias: str, name: str, max_bytes: int
) -> SourceState:
    """:func:`stat_original` by the source's ``astat``: on the event loop for a local file
    whose names are in the kernel's caches, in the I/O threads otherwise."""
    source = storage_source(storage, name)
    try:
        stat = await source.astat()
    finally:
        source.close()
    return _state(source, stat, storage_alias, name, max_bytes)


def _state(
    source: Source, stat: SourceStat, storage_alias: str, name: str, max_bytes: int
) -> SourceState:
    if stat.size > max_bytes:
        raise SourceTooLarge(f"source too large: {stat.size} bytes (limit {max_bytes})")
    if isinstance(source, FilesystemSource):
        return SourceState(
            storage_alias, name, version_of(stat), stat.size, source.local_path, source.identity
        )
    return SourceState(storage_alias, name, version_of(stat), stat.size, stat.path)
