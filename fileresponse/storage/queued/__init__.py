"""The queued storage: local at once, remote in the background (:class:`QueuedStorage`).

- :mod:`.storage`: the Storage and its source (reads follow the file);
- :mod:`.transfer`: one transfer, crash-safe and verified;
- :mod:`.engines`: where jobs run (``local`` threads, Celery, Django Tasks).

Exported lazily: importing this package imports no model, engine nor SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .storage import QueuedSource, QueuedStorage

__all__ = ["QueuedSource", "QueuedStorage"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import storage

        return getattr(storage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
