"""Processors: one module per kind of source (images now; video, audio, pdf later).

A processor takes a picklable job and returns a picklable result, so that it
runs in a worker process (see :mod:`fileresponse.derivatives.executor`).
Pillow and the like are imported only inside the processor modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .image import ImageJob, ImageResult

__all__ = ["run_job"]


def run_job(job: ImageJob) -> ImageResult:
    """Run ``job`` with the processor of its kind (the entry point of worker processes)."""
    from .image import process_image

    return process_image(job)
