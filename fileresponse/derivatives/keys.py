"""A derivative's name in the derivative storage: derived, never taken from the request.

::

    <processor version>/<source storage>/<h[:2]>/<h>/<source version>/<spec>.<ext>
    pillow-1/default/3f/3f9c.../18a4c2b9e1f00000-4f2a1/300x200_fill_q-80.webp

``h`` hashes the source's name (any name gives a short safe path), and
``<h>/source.json`` records the name for the purge; the source version is its
ETag, or its size and modification time; the processor version changes when
its output for the same spec changes. Pure functions: no I/O, no Django.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fileresponse.sources.base import SourceStat

    from .spec import Spec

__all__ = [
    "MANIFEST_NAME",
    "TEMP_SUFFIX",
    "derivative_name",
    "lock_key",
    "manifest_name",
    "safe_version",
    "source_prefix",
    "version_of",
]

#: The record of a source's name, in the directory of its derivatives.
MANIFEST_NAME = "source.json"
#: Temporary files (atomic writes) end so, and never have a final name.
TEMP_SUFFIX = ".tmp"
_SAFE_VERSION = re.compile(r"[A-Za-z0-9._-]{1,64}")


def version_of(stat: SourceStat) -> str:
    """A source's version: its entity tag, or its modification time and size."""
    return stat.etag or f"{int(stat.mtime * 1_000_000):x}-{stat.size:x}"


def source_prefix(storage_alias: str, source_name: str, *, engine: str) -> str:
    """The directory of all derivatives of one source (every version) by one processor version."""
    digest = hashlib.blake2b(
        f"{storage_alias}\x00{source_name}".encode("utf-8", "surrogatepass"), digest_size=16
    ).hexdigest()
    return f"{engine}/{storage_alias}/{digest[:2]}/{digest}"


def manifest_name(storage_alias: str, source_name: str, *, engine: str) -> str:
    return f"{source_prefix(storage_alias, source_name, engine=engine)}/{MANIFEST_NAME}"


def safe_version(version: str) -> str:
    """A version as a path segment: itself when short and safe, else a hash of it."""
    if _SAFE_VERSION.fullmatch(version) and version not in (".", ".."):
        return version
    return hashlib.blake2b(version.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def derivative_name(
    storage_alias: str,
    source_name: str,
    version: str,
    spec: Spec,
    extension: str,
    *,
    engine: str,
) -> str:
    """The derivative's name (see the module's docs); the format is in ``extension``."""
    slug = "_".join(replace(spec, format=None).canonical().split()).replace("=", "-") or "fit"
    return (
        f"{source_prefix(storage_alias, source_name, engine=engine)}/{safe_version(version)}/"
        f"{slug}.{extension}"
    )


def lock_key(name: str) -> str:
    """The single-flight key of a derivative name: short, and safe in any lock backend."""
    return hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
