"""How a storage delivers its files: the one protocol the views ask.

A storage that implements :class:`DeliveringStorage` (as
:class:`~fileresponse.storage.MinioStorage` does) chooses the default
delivery mode, the URL of a redirect and the source of a streamed response;
any other storage streams through
:class:`~fileresponse.sources.storage.StorageSource` and redirects to
``storage.url(name)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from fileresponse.sources.base import Source

__all__ = ["DeliveringStorage"]


@runtime_checkable
class DeliveringStorage(Protocol):
    """A storage that says how its files are delivered (see ``conf.DELIVERY_MODES``).

    - ``delivery``: the mode when the view names none: ``"stream"`` (the
      response sends the bytes), ``"presigned"`` or ``"public"`` (a ``302``);
    - ``adelivery_url(name, mode)``: the URL a redirect in ``mode`` points to;
    - ``source(relative_path)``: the source a ``stream`` response reads, the
      path checked like a path under a root
      (:class:`~fileresponse.exceptions.UnsafePath`).
    """

    @property
    def delivery(self) -> str: ...

    async def adelivery_url(self, name: str, mode: str) -> str: ...

    def source(self, relative_path: str) -> Source: ...
