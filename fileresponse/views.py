"""``serve``: an async view for the files under a root or in a storage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import (
    HttpRequest,
    HttpResponseBase,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)

from .conf import DELIVERY_MODES, get_config
from .errors import error_response
from .exceptions import FileResponseError
from .responses import AsyncFileResponse
from .sources import Source, SourceStat
from .sources.filesystem import FilesystemSource, relative_path_parts
from .storage.delivery import DeliveringStorage
from .threads import in_thread

if TYPE_CHECKING:
    from django.core.files.storage import Storage

__all__ = ["error_response", "serve", "serve_storage"]


async def serve(
    request: HttpRequest,
    path: str,
    document_root: str | None = None,
    *,
    storage: str | Storage | None = None,
    delivery: str | None = None,
    **response_options: Any,
) -> HttpResponseBase:
    """Serve the file at ``path`` under ``document_root``, or in ``storage``.

    Like ``django.views.static.serve``, for production: async, ranges,
    conditional requests, no directory listings. ``document_root`` defaults
    to ``FILERESPONSE["DOCUMENT_ROOT"]``, then ``MEDIA_ROOT``. Keyword
    arguments (``as_attachment``, ``cache_control``, ...) go to
    :class:`~fileresponse.responses.AsyncFileResponse`::

        path("files/<path:path>", serve, {"document_root": MEDIA_ROOT})

    With ``storage`` (an alias of ``STORAGES`` or a Storage instance), the
    file comes from that storage: see :func:`serve_storage`::

        path("files/<path:path>", serve, {"storage": "default"})
    """
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    if storage is not None:
        return await serve_storage(request, path, storage, delivery=delivery, **response_options)
    root = document_root or get_config().DOCUMENT_ROOT or settings.MEDIA_ROOT
    if not root:
        raise ImproperlyConfigured("serve() needs a document_root, or MEDIA_ROOT set")
    try:
        source = FilesystemSource.from_root(root, path)
        return await AsyncFileResponse.acreate(source, request, **response_options)
    except FileResponseError as error:
        return error_response(error, request)


async def serve_storage(
    request: HttpRequest,
    path: str,
    storage: str | Storage = "default",
    *,
    delivery: str | None = None,
    **response_options: Any,
) -> HttpResponseBase:
    """Serve the file at ``path`` in a Django storage (an alias of ``STORAGES``, or an instance).

    The path is checked like a path under a root (``..``, absolute paths,
    NUL bytes, backslashes: ``404``), whatever the storage. The source
    follows the storage (:func:`~fileresponse.sources.storage.storage_source`):
    a :class:`~fileresponse.storage.delivery.DeliveringStorage` such as
    :class:`~fileresponse.storage.MinioStorage` gives its own (ranged GETs
    from a pooled client), a ``FileSystemStorage`` is served from its
    ``location`` like :func:`serve`, any other storage through
    :class:`~fileresponse.sources.storage.StorageSource`.

    ``delivery`` (default: the storage's ``delivery``, e.g. a MinioStorage's
    ``DELIVERY``, else ``stream``):

    - ``stream``: this response sends the bytes (ranges, conditional
      requests, HEAD from a stat alone);
    - ``presigned``: ``302`` to a URL signed for ``PRESIGNED_TTL`` seconds
      (other storages: to ``storage.url(name)``);
    - ``public``: ``302`` to ``PUBLIC_URL`` + key (other storages:
      ``storage.url(name)``).

    Redirects do not ask the storage whether the file exists: the storage
    answers ``404`` itself. A storage that does not answer gives ``503``
    with ``Retry-After``: under ASGI the GET of the first range is started
    before the response is returned, so the ``503`` covers it too.
    """
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    from .sources.storage import storage_source

    backend = _storage(storage)
    mode = delivery or _default_delivery(backend)
    if mode not in DELIVERY_MODES:
        raise ImproperlyConfigured(
            f"delivery must be one of {', '.join(DELIVERY_MODES)}, not {mode!r}"
        )
    try:
        if mode != "stream":
            return await _redirect(backend, path, mode)
        source = storage_source(backend, path)
        if hasattr(request, "scope"):
            response = await AsyncFileResponse.acreate(source, request, **response_options)
            await response.aprepare()
            return response
        # Under WSGI this view runs in a one-off event loop: stat with the
        # sync clients (pooled per process) in an I/O thread instead.
        stat = await in_thread(_stat_or_close, source)
        return AsyncFileResponse(source, request, stat=stat, **response_options)
    except FileResponseError as error:
        return error_response(error, request)


def _storage(storage: str | Storage) -> Storage:
    if isinstance(storage, str):
        from django.core.files.storage import storages

        return storages[storage]
    return storage


def _default_delivery(storage: Storage) -> str:
    return storage.delivery if isinstance(storage, DeliveringStorage) else "stream"


def _stat_or_close(source: Source) -> SourceStat:
    try:
        return source.stat()
    except BaseException:
        source.close()
        raise


async def _redirect(storage: Storage, path: str, mode: str) -> HttpResponseRedirect:
    name = "/".join(relative_path_parts(path))
    if isinstance(storage, DeliveringStorage):
        url = await storage.adelivery_url(name, mode)
    else:
        url = await in_thread(storage.url, name)
    response = HttpResponseRedirect(url)
    if mode == "presigned":
        # The URL expires: no cache may keep the redirect.
        response["Cache-Control"] = "private, no-store"
    return response
