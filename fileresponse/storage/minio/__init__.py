"""MinIO (or any S3-compatible store) as a Django Storage, one job per module.

- :mod:`.clients`: the SDK checks, the pooled sync and per-loop async clients, object keys;
- :mod:`.errors`: the SDKs' errors as the library's exceptions;
- :mod:`.objects`: the stat and ranged GETs of one object;
- :mod:`.files`: an object read as a file, and upload bodies;
- :mod:`.storage`: :class:`MinioStorage`, the Storage API sync and async.

Names are exported lazily: importing this package imports no SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clients import (
        AsyncClient,
        SyncClient,
        aclose_clients,
        async_client,
        object_key,
        sync_client,
    )
    from .storage import MinioStorage

__all__ = [
    "AsyncClient",
    "MinioStorage",
    "SyncClient",
    "aclose_clients",
    "async_client",
    "object_key",
    "sync_client",
]

_HOMES = {
    "AsyncClient": "clients",
    "MinioStorage": "storage",
    "SyncClient": "clients",
    "aclose_clients": "clients",
    "async_client": "clients",
    "object_key": "clients",
    "sync_client": "clients",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
