"""Django Storage backends, and how a storage delivers its files.

- :class:`MinioStorage` (:mod:`fileresponse.storage.minio`): MinIO or any
  S3-compatible store, with async counterparts of the Storage API. Needs the
  ``fileresponse[minio]`` extra.
- :class:`QueuedStorage` (:mod:`fileresponse.storage.queued`): saves locally
  at once and moves files to a remote storage in the background.
- :class:`DeliveringStorage` (:mod:`fileresponse.storage.delivery`): the
  protocol through which a storage tells the views how to deliver its files.

Backends are exported lazily, so importing this package imports no SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .delivery import DeliveringStorage
    from .minio import MinioStorage
    from .queued import QueuedStorage

__all__ = ["DeliveringStorage", "MinioStorage", "QueuedStorage"]


def __getattr__(name: str) -> Any:
    if name == "MinioStorage":
        from .minio.storage import MinioStorage

        return MinioStorage
    if name == "QueuedStorage":
        from .queued.storage import QueuedStorage

        return QueuedStorage
    if name == "DeliveringStorage":
        from .delivery import DeliveringStorage

        return DeliveringStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
