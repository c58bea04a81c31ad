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
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from fileresponse.conf import DERIVATIVE_KINDS
from fileresponse.derivatives.exceptions import KindUnavailable, SpecMismatch

from .audio import AudioProcessor
from .base import Job, JobInput, Output, Processor, Result
from .command import CommandProcessor
from .imaging import ENGINES, Engine, ImageProcessor, engine_module, get_engine
from .pdf import PdfProcessor
from .video import VideoProcessor

__all__ = [
    "ENGINES",
    "Engine",
    "Job",
    "JobInput",
    "Output",
    "Processor",
    "Result",
    "check_available",
    "engine_module",
    "get_engine",
    "get_processor",
    "processor_for",
    "processors",
    "register_processor",
    "run_job",
    "unregister_processor",
]

if TYPE_CHECKING:
    from fileresponse.conf import Config
    from fileresponse.derivatives.spec import Spec

#: The processor of sources that no processor claims by name.
DEFAULT_KIND = "image"

_lock = threading.Lock()
_processors: dict[str, Processor] = {
    "image": ImageProcessor(),
    "command": CommandProcessor(),
    "pdf": PdfProcessor(),
    "video": VideoProcessor(),
    "audio": AudioProcessor(),
}


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


def processor_for(source_name: str, spec: Spec | None = None) -> Processor:
    """The processor of a source: the last registered that claims its name, else ``image``.

    A spec of kind ``command`` (``run=name``) goes to the ``command`` processor,
    whatever the source (:class:`SpecMismatch` if none is registered).
    """
    if spec is not None and spec.kind == "command":
        with _lock:
            command = _processors.get("command")
        if command is None:
            raise SpecMismatch("no command processor")
        return command
    for processor in reversed(processors()):
        if processor.claims(source_name):
            return processor
    return get_processor(DEFAULT_KIND)


def check_available(processor: Processor, config: Config) -> None:
    """``KindUnavailable`` (``501``) for a built-in kind left out of ``DERIVATIVES_KINDS``,
    or a kind whose library is missing; a site's own kinds are not listed there."""
    kinds = config.DERIVATIVES_KINDS
    if kinds is not None and processor.kind in DERIVATIVE_KINDS and processor.kind not in kinds:
        raise KindUnavailable(f"{processor.kind} derivatives are not enabled (DERIVATIVES_KINDS)")
    reason = processor.unavailable(config)
    if reason is not None:
        raise KindUnavailable(reason)


def run_job(job: Job) -> Any:
    """Run ``job`` with the processor class it names (the entry point of worker processes)."""
    processor: type[Processor] = import_string(job.processor)
    return processor.run(job)
