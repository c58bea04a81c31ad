"""The Python API of derivative URLs, for views, serializers and the template tags.

Building a URL does no processing and no storage round-trip: it reads a
FieldFile's ``name`` and ``storage`` attributes (never ``size``, ``url``,
``width`` or ``path``), canonicalizes the spec, signs, and formats. The
derivative is made when a browser first asks for the URL.

::

    from fileresponse.derivatives import derivative_url

    derivative_url(photo.image, "300x200 fill webp", version=photo.updated_at)
    # '/derivatives/<signature>/300x200,fill,webp,v=1732417200000000/photos/cat.jpg'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from fileresponse.conf import Config, get_config, per_settings
from fileresponse.derivatives.exceptions import DerivativeLimitExceeded
from fileresponse.derivatives.processors import processor_for
from fileresponse.derivatives.signing import normalize_version, signed_path
from fileresponse.derivatives.spec import Spec, parse_spec

__all__ = [
    "Derivative",
    "DerivativeImage",
    "derivative",
    "derivative_image",
    "derivative_url",
]

#: The URL name of the derivative view (``app_name`` of :mod:`fileresponse.derivatives.urls`).
URL_NAME = "fileresponse:derivative"
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z_:][-A-Za-z0-9_:.]*")


@dataclass(frozen=True, slots=True)
class Derivative:
    """A derivative's URL and what is known of it without touching the source.

    ``str()`` gives the URL, so ``{% derivative ... as thumb %}{{ thumb }}``
    writes it, and ``{{ thumb.width }}`` the width when known.
    """

    url: str
    source_name: str
    spec: Spec
    #: Alias of the source storage in Django's ``STORAGES``.
    storage: str = "default"
    version: str | None = None
    #: The output size, when the spec (``fill``/``crop``) or a given source size tells it.
    width: int | None = None
    height: int | None = None

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True, slots=True)
class DerivativeImage:
    """An ``<img>``: one derivative per pixel density, for ``src`` and ``srcset``."""

    src: Derivative
    #: ``(density, derivative)`` pairs of the ``srcset``; empty when the spec has no size.
    candidates: tuple[tuple[float, Derivative], ...] = ()

    @property
    def url(self) -> str:
        return self.src.url

    @property
    def width(self) -> int | None:
        return self.src.width

    @property
    def height(self) -> int | None:
        return self.src.height

    @property
    def srcset(self) -> str:
        """``<url> 1x, <url> 2x``, or ``""``."""
        return ", ".join(f"{item.url} {density:g}x" for density, item in self.candidates)

    def html(self, attributes: Mapping[str, Any] | None = None) -> SafeString:
        """The ``<img>`` tag: ``src``, ``srcset``, ``width``/``height`` when known, then
        ``attributes`` (escaped; ``None``/``False`` leave one out, ``True`` writes it bare).

        Defaults: ``alt=""``, ``loading="lazy"``, ``decoding="async"``.
        """
        merged: dict[str, Any] = {"src": self.url}
        if self.candidates:
            merged["srcset"] = self.srcset
        if self.width is not None and self.height is not None:
            merged["width"] = self.width
            merged["height"] = self.height
        merged.update({"alt": "", "loading": "lazy", "decoding": "async"})
        merged.update(attributes or {})
        parts: list[str] = []
        for name, value in merged.items():
            if not _ATTRIBUTE_NAME.fullmatch(name):
                raise ValueError(f"bad HTML attribute name {name!r}")
            if value is None or value is False:
                continue
            parts.append(f" {name}" if value is True else f' {name}="{escape(value)}"')
        return mark_safe("<img" + "".join(parts) + ">")  # every part is escaped

    def __str__(self) -> str:
        return self.html()

    def __html__(self) -> SafeString:
        return self.html()


def _reference(source: object, storage: str | None, allowed: tuple[str, ...]) -> tuple[str, str]:
    """``(storage alias, name)`` of a source: a FieldFile, a storage name or a path.

    - a FieldFile: its ``name``, and the alias whose storage it uses (found by
      identity among ``allowed``, then by equal ``deconstruct()``);
    - a ``str`` that is not absolute: a name in ``storage`` (default ``"default"``);
    - an absolute path (``str`` or ``os.PathLike``): made relative to the
      ``location`` of the first allowed storage that holds it (filesystem
      storages); a relative ``PathLike`` is a name.

    No storage method is called. Raises :class:`ValueError` for an empty
    FieldFile, a storage that is not allowed (``DERIVATIVES_SOURCE_STORAGES``),
    or a path outside every allowed storage.
    """
    from django.db.models.fields.files import FieldFile

    if isinstance(source, FieldFile):
        if not source.name:
            raise ValueError("the file field has no file")
        alias = _alias_of(source.storage, allowed)
        if storage is not None and storage != alias:
            raise ValueError(f"the file is in storage {alias!r}, not {storage!r}")
        return alias, source.name
    alias = storage or "default"
    if alias not in allowed:
        raise ValueError(
            f"storage {alias!r} is not in FILERESPONSE['DERIVATIVES_SOURCE_STORAGES'] {allowed}"
        )
    if isinstance(source, str | os.PathLike):
        text = os.fspath(source)
        if not isinstance(text, str):
            raise TypeError("a source path must be text, not bytes")
        if os.path.isabs(text):
            return _relative_to_storages(text, storage, allowed)
        return alias, text.replace(os.sep, "/") if os.sep != "/" else text
    raise TypeError(
        f"a derivative source is a FieldFile, a storage name or a path, not {type(source).__name__}"
    )


def _alias_of(target: object, allowed: Iterable[str]) -> str:
    from django.core.files.storage import default_storage, storages

    if target is default_storage and "default" in allowed:
        return "default"
    for alias in allowed:
        if storages[alias] is target:
            return alias
    deconstruct = getattr(target, "deconstruct", None)
    if deconstruct is not None:
        signature = deconstruct()
        for alias in allowed:
            candidate = getattr(storages[alias], "deconstruct", None)
            if candidate is not None and candidate() == signature:
                return alias
    raise ValueError(
        f"the file's storage {type(target).__name__} is none of "
        f"FILERESPONSE['DERIVATIVES_SOURCE_STORAGES'] {tuple(allowed)}"
    )


def _relative_to_storages(
    path: str, storage: str | None, allowed: Iterable[str]
) -> tuple[str, str]:
    from django.core.files.storage import storages

    normalized = os.path.normpath(path)
    for alias in [storage] if storage is not None else allowed:
        location = getattr(storages[alias], "location", None)
        if not isinstance(location, str):
            continue
        relative = os.path.relpath(normalized, os.path.normpath(location))
        if relative != os.curdir and not relative.startswith(os.pardir):
            return alias, relative.replace(os.sep, "/")
    raise ValueError(f"{path} is in no derivative source storage")


def _prefix(config: Config) -> str:
    """Where derivative URLs start: ``DERIVATIVES_BASE_URL``, or the reversed URLconf."""
    from django.conf import settings
    from django.urls import get_script_prefix, get_urlconf

    base = config.DERIVATIVES_BASE_URL
    if base is not None:
        return base if base.endswith("/") else base + "/"
    # The URLconf and script prefix may be set per request (request.urlconf, root_path).
    key = (get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())
    prefixes = _reversed_prefixes()
    prefix = prefixes.get(key)
    if prefix is None:
        if len(prefixes) >= _MAX_PREFIXES:
            prefixes.clear()
        prefix = prefixes[key] = _reverse_prefix(key[0])
    return prefix


_MAX_PREFIXES = 64


@per_settings("ROOT_URLCONF", "FORCE_SCRIPT_NAME")
def _reversed_prefixes() -> dict[tuple[Any, str], str]:
    """The reversed prefix of each (URLconf, script prefix) seen, until the URLconf changes."""
    return {}


def _reverse_prefix(urlconf: Any) -> str:
    from django.urls import NoReverseMatch, reverse

    placeholders = {"signature": "S", "options": "O", "name": "N"}
    try:
        url = reverse(URL_NAME, urlconf=urlconf, kwargs=placeholders)
    except NoReverseMatch as error:
        raise ImproperlyConfigured(
            "derivative URLs need path('derivatives/', include('fileresponse.derivatives.urls')) "
            "in the URLconf, or FILERESPONSE['DERIVATIVES_BASE_URL']"
        ) from error
    return url.removesuffix("S/O/N")


@dataclass(frozen=True, slots=True)
class _Target:
    """What the derivatives of one source share: where URLs start, and the source."""

    prefix: str
    storage: str
    name: str
    version: str | None
    source_size: tuple[int, int] | None

    @classmethod
    def build(
        cls,
        config: Config,
        source: object,
        *,
        version: object,
        storage: str | None,
        source_size: tuple[int, int] | None,
    ) -> _Target:
        alias, name = _reference(source, storage, config.DERIVATIVES_SOURCE_STORAGES)
        return cls(_prefix(config), alias, name, normalize_version(version), source_size)

    def derivative(self, spec: Spec) -> Derivative:
        size = spec.output_size(*self.source_size) if self.source_size else spec.box_size
        path = signed_path(self.name, spec, version=self.version, storage=self.storage)
        return Derivative(
            url=self.prefix + path,
            source_name=self.name,
            spec=spec,
            storage=self.storage,
            version=self.version,
            width=size[0] if size else None,
            height=size[1] if size else None,
        )


def derivative(
    source: object,
    spec: str | Spec,
    *,
    version: object = None,
    storage: str | None = None,
    source_size: tuple[int, int] | None = None,
) -> Derivative:
    """The derivative of ``source`` by ``spec``: its signed URL, and its size when known.

    ``source`` is a FieldFile (its storage must be one of
    ``DERIVATIVES_SOURCE_STORAGES``), a name in ``storage`` (default
    ``"default"``) or an absolute path under a filesystem source storage;
    no storage method is called.

    ``version`` (a datetime, an int, a string, e.g. the model's ``updated_at``)
    goes into the URL so that a new version gives a new URL. ``source_size``
    (``(width, height)``, e.g. from the model's ``width_field``) lets ``fit``
    specs know their output size. Raises
    :class:`~fileresponse.derivatives.spec.InvalidSpec` or :class:`ValueError`.
    """
    parsed = parse_spec(spec)
    target = _Target.build(
        get_config(), source, version=version, storage=storage, source_size=source_size
    )
    return target.derivative(parsed)


def derivative_url(
    source: object,
    spec: str | Spec,
    *,
    version: object = None,
    storage: str | None = None,
) -> str:
    """The signed URL of the derivative of ``source`` by ``spec`` (see :func:`derivative`)."""
    return derivative(source, spec, version=version, storage=storage).url


def derivative_image(
    source: object,
    spec: str | Spec,
    *,
    version: object = None,
    storage: str | None = None,
    source_size: tuple[int, int] | None = None,
    densities: Iterable[float] | None = None,
) -> DerivativeImage:
    """The derivatives of an ``<img>``: ``spec`` for ``src``, and ``spec`` scaled by each
    density (default ``DERIVATIVES_DENSITIES``, ``(1, 2)``) for ``srcset``.

    A spec without a size gets no ``srcset``. Densities whose box would pass
    ``DERIVATIVES_MAX_WIDTH``/``_HEIGHT`` (the view would refuse them) are
    left out, and so, with ``source_size``, are densities that would not add
    pixels (the source is too small and ``upscale`` is off).
    """
    parsed = parse_spec(spec)
    config = get_config()
    target = _Target.build(
        config, source, version=version, storage=storage, source_size=source_size
    )
    src = target.derivative(parsed)
    if parsed.width is None and parsed.height is None:
        return DerivativeImage(src=src)
    factors = sorted(set(densities if densities is not None else config.DERIVATIVES_DENSITIES))
    candidates: list[tuple[float, Derivative]] = []
    previous: tuple[int | None, int | None] | None = None
    for factor in factors:
        if not factor > 0:
            raise ValueError(f"densities must be positive, not {factor}")
        scaled = parsed.scaled(factor)
        if factor != 1 and not _within_limits(target.name, scaled, config):
            continue
        item = src if factor == 1 else target.derivative(scaled)
        if source_size is not None:
            if (item.width, item.height) == previous:
                continue
            previous = (item.width, item.height)
        candidates.append((factor, item))
    return DerivativeImage(src=src, candidates=tuple(candidates))


def _within_limits(source_name: str, spec: Spec, config: Config) -> bool:
    """Whether the view would make ``spec`` (the processor's own limits, not a copy of them)."""
    try:
        processor_for(source_name, spec).check(spec, config)
    except DerivativeLimitExceeded:
        return False
    return True
