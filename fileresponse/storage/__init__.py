"""Django Storage backends.

- :class:`MinioStorage` (:mod:`fileresponse.storage.minio`): MinIO or any
  S3-compatible store, with async counterparts of the Storage API. Needs the
  ``fileresponse[minio]`` extra.

Backends are exported lazily, so importing this package imports no SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .minio import MinioStorage

__all__ = ["MinioStorage"]


def __getattr__(name: str) -> Any:
    if name == "MinioStorage":
        from .minio import MinioStorage

        return MinioStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
