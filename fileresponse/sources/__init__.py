"""Sources: where the bytes of a file response come from.

One module per backend, behind the small :class:`Source` protocol. Optional
SDKs are imported only inside their module.
"""

from __future__ import annotations

from .base import Source, SourceStat, as_source

__all__ = ["Source", "SourceStat", "as_source"]
