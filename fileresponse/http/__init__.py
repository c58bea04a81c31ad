"""HTTP for file responses.

The submodules (:mod:`.ranges`, :mod:`.conditional`, :mod:`.validators`,
:mod:`.headers`, :mod:`.plan`) are pure: no Django, no I/O. The Django
response class is exported lazily so that importing them does not import
Django.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fileresponse.responses import AsyncFileResponse

__all__ = ["AsyncFileResponse"]


def __getattr__(name: str) -> Any:
    if name == "AsyncFileResponse":
        from fileresponse.responses import AsyncFileResponse

        return AsyncFileResponse
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
