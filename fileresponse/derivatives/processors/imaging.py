"""The ``image`` processor: its limits and formats, and the engine that does the work.

``DERIVATIVES_ENGINE`` names the engine: ``"pillow"`` (:mod:`.image`, the
``fileresponse[images]`` extra) or ``"vips"`` (:mod:`.vips`, libvips through
pyvips, the ``fileresponse[vips]`` extra). :func:`get_engine` loads it, or
raises :class:`~django.core.exceptions.ImproperlyConfigured` naming the extra
(the system check ``fileresponse.E022`` reports the same at start-up).
"""

from __future__ import annotations

import importlib
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Final

from django.core.exceptions import ImproperlyConfigured

from fileresponse.derivatives.exceptions import (
    SpecMismatch,
    UnsupportedFormat,
)
from fileresponse.http.headers import accepted_types

from .base import JobInput, Output, Processor, check_box
from .jobs import CONTENT_TYPES, ImageJob

if TYPE_CHECKING:
    from fileresponse.conf import Config
    from fileresponse.derivatives.spec import Spec

    from .jobs import ImageResult

__all__ = [
    "ENGINES",
    "Engine",
    "ImageProcessor",
    "engine_module",
    "family_format",
    "get_engine",
    "output_formats",
]

#: Engine name -> (its module here, the library it needs, the extra that installs it).
_ENGINES: Final = {
    "pillow": ("image", "PIL.Image", "images"),
    "vips": ("vips", "pyvips", "vips"),
}
ENGINES: Final = tuple(_ENGINES)
_EXTENSIONS: Final = {"jpeg": "jpg", "png": "png", "webp": "webp", "avif": "avif"}
_FAMILIES: Final = {
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".jpe": "jpeg",
    ".jfif": "jpeg",
    ".png": "png",
    ".webp": "webp",
    ".avif": "avif",
}


@dataclass(frozen=True, slots=True)
class Engine:
    """A loaded engine: its name, its version (a cache-key component) and its functions."""

    name: str
    #: The top directory of its derivatives, e.g. ``pillow-1``: engines never share outputs.
    version: str
    output_formats: Callable[[], frozenset[str]]
    process: Callable[[ImageJob], ImageResult]


def engine_module(name: str) -> str:
    """The dotted path of an engine's module (workers preload it)."""
    try:
        module = _ENGINES[name][0]
    except KeyError:
        raise ImproperlyConfigured(
            f"unknown DERIVATIVES_ENGINE {name!r} (known: {', '.join(ENGINES)})"
        ) from None
    return f"{__package__}.{module}"


def get_engine(name: str) -> Engine:
    """The engine called ``name``, loaded; ``ImproperlyConfigured`` if its library is missing."""
    path = engine_module(name)
    _, library, extra = _ENGINES[name]
    try:
        importlib.import_module(library)
        module = importlib.import_module(path)
    except (ImportError, OSError) as error:
        # OSError: pyvips is installed but finds no libvips to load.
        raise ImproperlyConfigured(
            f"DERIVATIVES_ENGINE {name!r} needs {library.split('.')[0]}: "
            f"pip install 'fileresponse[{extra}]' ({error})"
        ) from error
    return Engine(
        name=name,
        version=module.ENGINE_VERSION,
        output_formats=module.output_formats,
        process=module.process_image,
    )


def output_formats(engine: str) -> frozenset[str]:
    """The formats the engine called ``engine`` writes here."""
    return get_engine(engine).output_formats()


def family_format(source_name: str) -> str:
    """The output format of a spec without one: the source's family by its extension.

    JPEG stays JPEG, WebP and AVIF stay; anything else (PNG, GIF, TIFF, BMP,
    no extension) becomes PNG, which is lossless and keeps alpha.
    """
    return _FAMILIES.get(posixpath.splitext(source_name)[1].lower(), "png")


def _output(output_format: str) -> Output:
    return Output(output_format, _EXTENSIONS[output_format], CONTENT_TYPES[output_format])


class ImageProcessor(Processor):
    """Photos and pictures: resize, crop, convert (see :mod:`fileresponse.derivatives.spec`)."""

    kind = "image"
    suffixes: ClassVar[frozenset[str]] = frozenset(
        {*_FAMILIES, ".gif", ".tif", ".tiff", ".bmp", ".heic", ".heif"}
    )

    def preload(self, config: Config) -> Sequence[str]:
        return [engine_module(config.DERIVATIVES_ENGINE)]

    def version(self, config: Config) -> str:
        return get_engine(config.DERIVATIVES_ENGINE).version

    def check(self, spec: Spec, config: Config) -> None:
        """``400`` before any work: a spec of another kind, a box beyond the limits.

        The limits are ``DERIVATIVES_MAX_WIDTH`` and ``DERIVATIVES_MAX_HEIGHT``.
        """
        if spec.kind != "image":
            raise SpecMismatch(f"an image source takes image specs, not {spec.kind}")
        check_box(spec, config)

    def choose_output(
        self, spec: Spec, source_name: str, accept: str | None, config: Config
    ) -> tuple[Output, bool]:
        """The format for a spec and a request's ``Accept`` header.

        ``auto`` takes the first of ``DERIVATIVES_AUTO_FORMATS`` that the header
        names explicitly (``image/avif``, ``image/webp``; ``image/*`` does not
        count, as browsers send it for formats they cannot show) and the engine
        writes, else the source's family (JPEG, or PNG), and varies by
        ``Accept``. No format: the source's family. :class:`UnsupportedFormat`
        for a format the engine lacks.
        """
        supported = output_formats(config.DERIVATIVES_ENGINE)
        if spec.format == "auto":
            accepted = accepted_types(accept or "")
            for candidate in config.DERIVATIVES_AUTO_FORMATS:
                if candidate in supported and f"image/{candidate}" in accepted:
                    return _output(candidate), True
            return _output(_fallback(source_name)), True
        return self.output(spec.format or family_format(source_name), config), False

    def output(self, output_format: str, config: Config) -> Output:
        if output_format not in output_formats(config.DERIVATIVES_ENGINE):
            raise UnsupportedFormat(f"unsupported format: {output_format}")
        return _output(output_format)

    def output_choices(self, spec: Spec, source_name: str, config: Config) -> list[Output]:
        if spec.format != "auto":
            return [self.choose_output(spec, source_name, None, config)[0]]
        supported = output_formats(config.DERIVATIVES_ENGINE)
        choices = [name for name in config.DERIVATIVES_AUTO_FORMATS if name in supported]
        fallback = _fallback(source_name)
        return [_output(name) for name in [*choices, *([fallback] * (fallback not in choices))]]

    def job(self, spec: Spec, output: Output, source: JobInput, config: Config) -> ImageJob:
        return ImageJob(
            spec=spec,
            output_format=output.format,
            max_source_pixels=config.DERIVATIVES_MAX_SOURCE_PIXELS,
            max_source_bytes=config.DERIVATIVES_MAX_SOURCE_BYTES,
            path=source.path,
            data=source.data,
            engine=config.DERIVATIVES_ENGINE,
            identity=source.identity,
        )

    @staticmethod
    def run(job: ImageJob) -> ImageResult:
        return get_engine(job.engine).process(job)


def _fallback(source_name: str) -> str:
    return "jpeg" if family_format(source_name) == "jpeg" else "png"
