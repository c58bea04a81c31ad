"""Processors: one module per engine and kind of source (images now; video, audio, pdf later).

A processor takes a picklable job and returns a picklable result, so that it
runs in a worker process (see :mod:`fileresponse.derivatives.executor`).
Imaging libraries are imported only inside the engine modules, and an
engine module only when its engine is used:

- ``"pillow"`` (:mod:`.image`, the default), from the ``fileresponse[images]`` extra;
- ``"vips"`` (:mod:`.vips`, libvips through pyvips), from the ``fileresponse[vips]`` extra.

``DERIVATIVES_ENGINE`` picks one; :func:`get_engine` loads it, or raises
:class:`~django.core.exceptions.ImproperlyConfigured` naming the extra to
install (the system check ``fileresponse.E022`` reports the same at start-up).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from .jobs import ImageJob, ImageResult

__all__ = ["ENGINES", "Engine", "engine_module", "get_engine", "run_job"]

#: Engine name -> (its module here, the library it needs, the extra that installs it).
_ENGINES: Final = {
    "pillow": ("image", "PIL.Image", "images"),
    "vips": ("vips", "pyvips", "vips"),
}
ENGINES: Final = tuple(_ENGINES)


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
    return f"{__name__}.{module}"


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


def run_job(job: ImageJob) -> ImageResult:
    """Run ``job`` with the engine it names (the entry point of worker processes)."""
    return get_engine(job.engine).process(job)
