"""Static files from ``STATIC_ROOT`` after ``collectstatic``, as WhiteNoise serves them.

A precompressed variant (``app.css.br``, ``app.css.gz``) answers when
``Accept-Encoding`` accepts it (:func:`fileresponse.http.negotiation.choose_encoding`),
with its own ETag and ``Vary: Accept-Encoding``; names hashed by
``ManifestStaticFilesStorage`` are cached for a year (``immutable``), the
others for ``STATIC_CACHE_CONTROL``. The manifest and the variants on disk
are read once per process (again when ``STATIC_ROOT`` or ``STORAGES`` change).
:func:`serve_static` is the view; the ASGI fast path calls :func:`static_response`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponseBase, HttpResponseNotAllowed

from .conf import get_config, per_settings
from .errors import error_response
from .exceptions import FileResponseError, SourceNotFound
from .http.negotiation import choose_encoding
from .responses import AsyncFileResponse
from .sources import SourceStat
from .sources.filesystem import FilesystemSource, relative_path_parts
from .threads import in_thread

if TYPE_CHECKING:
    from django.http import HttpRequest

__all__ = [
    "IMMUTABLE_CACHE_CONTROL",
    "VARIANT_SUFFIXES",
    "StaticFiles",
    "load_static_files",
    "serve_static",
    "static_response",
]

logger = logging.getLogger("fileresponse")

#: ``Cache-Control`` of a name hashed by ``ManifestStaticFilesStorage``: its bytes never change.
IMMUTABLE_CACHE_CONTROL = "max-age=31536000, immutable"
#: The precompressed variants looked for, best first: content coding, file suffix.
VARIANT_SUFFIXES: Mapping[str, str] = {"br": ".br", "gzip": ".gz"}


async def serve_static(request: HttpRequest, path: str) -> HttpResponseBase:
    """The view of ``STATIC_ROOT``, for the URLconf (the fast path answers before it)::

    path("static/<path:path>", serve_static)
    """
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    return await static_response(request, path)


async def static_response(request: HttpRequest, path: str) -> HttpResponseBase:
    """The answer for ``path`` under ``STATIC_ROOT``, errors included (``error_response``)."""
    static_files = load_static_files.peek()
    if static_files is None:  # the first request: read STATIC_ROOT off the event loop
        static_files = await in_thread(load_static_files)
    try:
        return await static_files.respond(request, path)
    except FileResponseError as error:
        return error_response(error, request)


@dataclass(frozen=True, slots=True)
class StaticFiles:
    """``STATIC_ROOT`` as it was when read: its hashed names and precompressed variants."""

    root: str
    #: The names ``ManifestStaticFilesStorage`` wrote under a hash of their content.
    hashed: frozenset[str]
    #: Name -> the codings of its variants on disk, best first (``("br", "gzip")``).
    variants: Mapping[str, tuple[str, ...]]

    async def respond(self, request: HttpRequest, path: str) -> AsyncFileResponse:
        """The file response for ``path``: the variant ``Accept-Encoding`` prefers, or the file.

        Raises the errors of :mod:`fileresponse.exceptions` (a bad or missing path: ``404``).
        """
        parts = relative_path_parts(path)
        name = "/".join(parts)
        codings = self.variants.get(name, ())
        accept_encoding = request.headers.get("Accept-Encoding")
        chosen = choose_encoding(accept_encoding, codings) if codings else None
        source, stat, coding = await self._open(name, chosen)
        # Every answer for a name with variants may differ by Accept-Encoding (RFC 9110 §12.5.5).
        headers = {"Vary": "Accept-Encoding"} if codings else {}
        if coding is not None:
            headers["Content-Encoding"] = coding
        cache_control = (
            IMMUTABLE_CACHE_CONTROL if name in self.hashed else get_config().STATIC_CACHE_CONTROL
        )
        # The file name gives the type and the disposition: the original's, for a variant.
        return AsyncFileResponse(
            source,
            request,
            stat=stat,
            filename=parts[-1],
            cache_control=cache_control,
            headers=headers,
        )

    async def _open(
        self, name: str, coding: str | None
    ) -> tuple[FilesystemSource, SourceStat, str | None]:
        """The variant of ``coding`` opened and stat'ed, else the file itself.

        ``FilesystemSource.astat``: on the event loop when the kernel's caches
        answer, in the I/O threads otherwise.
        """
        if coding is not None:
            variant = FilesystemSource.from_root(self.root, name + VARIANT_SUFFIXES[coding])
            try:
                stat = await variant.astat()
            except SourceNotFound:
                variant.close()  # removed since STATIC_ROOT was read: the file itself
            except BaseException:
                variant.close()
                raise
            else:
                # Other bytes than the file's, so another entity tag (RFC 9110 §8.8.3).
                etag = None if stat.etag is None else f"{stat.etag}-{coding}"
                return variant, dataclasses.replace(stat, etag=etag), coding
        source = FilesystemSource.from_root(self.root, name)
        try:
            return source, await source.astat(), None
        except BaseException:
            source.close()
            raise


@per_settings("STATIC_ROOT", "STORAGES")
def load_static_files() -> StaticFiles:
    """``STATIC_ROOT`` read: the manifest of hashed names, the variants (blocking: a walk)."""
    root = settings.STATIC_ROOT
    if not root:
        raise ImproperlyConfigured("serving static files needs STATIC_ROOT (run collectstatic)")
    root = os.fspath(root)
    return StaticFiles(root=root, hashed=_hashed_names(), variants=_variants_under(root))


def _hashed_names() -> frozenset[str]:
    """The hashed names of the ``staticfiles`` storage's manifest; none without a manifest."""
    from django.contrib.staticfiles.storage import ManifestFilesMixin
    from django.core.files.storage import storages
    from django.utils.module_loading import import_string

    backend = (getattr(settings, "STORAGES", None) or {}).get("staticfiles", {}).get("BACKEND")
    # The class first: other storages are not built (StaticFilesStorage needs STATIC_URL).
    if not backend or not issubclass(import_string(backend), ManifestFilesMixin):
        return frozenset()
    # As an object: django-stubs' Storage does not admit the mixin's signatures.
    storage: object = storages["staticfiles"]
    assert isinstance(storage, ManifestFilesMixin)
    try:
        # (paths, hash) since Django 4.2; django-stubs still types it as the paths.
        loaded: Any = storage.load_manifest()
    except ValueError as error:
        logger.warning("static files: no immutable caching, the manifest is unreadable: %s", error)
        return frozenset()
    return frozenset(str(hashed) for hashed in loaded[0].values())


def _variants_under(root: str) -> dict[str, tuple[str, ...]]:
    """Each file of ``root`` that has precompressed variants beside it, with their codings."""
    found: dict[str, set[str]] = {}
    for directory, _, names in os.walk(root):
        present = set(names)
        relative_directory = os.path.relpath(directory, root)
        for file_name in names:
            for coding, suffix in VARIANT_SUFFIXES.items():
                original = file_name.removesuffix(suffix)
                if original != file_name and original in present:
                    name = posixpath.normpath(
                        posixpath.join(relative_directory.replace(os.sep, "/"), original)
                    )
                    found.setdefault(name, set()).add(coding)
    return {
        name: tuple(coding for coding in VARIANT_SUFFIXES if coding in codings)
        for name, codings in found.items()
    }
