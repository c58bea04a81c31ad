"""Processors by kind of source, and the entry point of worker processes.

A derivative request is routed to the processor that claims its source (by
name: ``.jpg`` is an ``image``); a source no processor claims goes to the
``image`` processor, whose engine then says whether it is an image. The
``image`` processor (:mod:`.imaging`) is built in; a site adds a kind with
:func:`register_processor` (for example in an ``AppConfig.ready``), and the
view, the store and single-flight need no change. A processor imports its
libraries only when it runs.
"""

from __future__ import annotations

import threading
from typing import Any

from django.utils.module_loading import import_string

from .base import Job, JobInput, Output, Processor, Result
from .imaging import ENGINES, Engine, ImageProcessor, engine_module, get_engine

__all__ = [
    "ENGINES",
    "Engine",
    "Job",
    "JobInput",
    "Output",
    "Processor",
    "Result",
    "engine_module",
    "get_engine",
    "get_processor",
    "processor_for",
    "processors",
    "register_processor",
    "run_job",
    "unregister_processor",
]

#: The processor of sources that no processor claims by name.
DEFAULT_KIND = "image"

_lock = threading.Lock()
_processors: dict[str, Processor] = {"image": ImageProcessor()}


def register_processor(processor: Processor) -> None:
    """Route the sources ``processor`` claims to it (replacing any of the same ``kind``)."""
    if not isinstance(processor, Processor):
        raise TypeError(f"a processor is a Processor, not {type(processor).__name__}")
    with _lock:
        _processors[processor.kind] = processor


def unregister_processor(kind: str) -> None:
    """Forget the processor of ``kind`` (the built-in ``image`` one stays)."""
    if kind == DEFAULT_KIND:
        raise ValueError("the image processor cannot be unregistered")
    with _lock:
        _processors.pop(kind, None)


def processors() -> list[Processor]:
    """The registered processors, the built-in one first."""
    with _lock:
        return list(_processors.values())


def get_processor(kind: str) -> Processor:
    with _lock:
        return _processors[kind]


def processor_for(source_name: str) -> Processor:
    """The processor of a source: the last registered that claims its name, else ``image``."""
    for processor in reversed(processors()):
        if processor.claims(source_name):
            return processor
    return get_processor(DEFAULT_KIND)


def run_job(job: Job) -> Any:
    """Run ``job`` with the processor class it names (the entry point of worker processes)."""
    processor: type[Processor] = import_string(job.processor)
    return processor.run(job)
