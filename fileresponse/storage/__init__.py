"""Django Storage backends, and how a storage delivers its files.

- :class:`MinioStorage` (:mod:`fileresponse.storage.minio`): MinIO or any
  S3-compatible store, with async counterparts of the Storage API. Needs the
  ``fileresponse[minio]`` extra.
- :class:`DeliveringStorage` (:mod:`fileresponse.storage.delivery`): the
  protocol through which a storage tells the views how to deliver its files.

Backends are exported lazily, so importing this package imports no SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .delivery import DeliveringStorage
    from .minio import MinioStorage

__all__ = ["DeliveringStorage", "MinioStorage"]


def __getattr__(name: str) -> Any:
    if name == "MinioStorage":
        from .minio.storage import MinioStorage

        return MinioStorage
    if name == "DeliveringStorage":
        from .delivery import DeliveringStorage

        return DeliveringStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
