"""The ``pdf`` processor: one page rendered with PDFium (``fileresponse[pdf]``), as an image.

``page=2 400x jpeg``: the page is rendered at the scale its box needs (a page
is vector art: the box is met whether or not ``upscale`` is given; with no
box, one pixel per point), then cut, scaled and encoded by the Pillow
helpers of :mod:`.image` like any image. The page count is checked against
``DERIVATIVES_MAX_PAGES`` before anything is rendered.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

from django.core.exceptions import ImproperlyConfigured

from fileresponse.derivatives.exceptions import BeyondSource, CorruptMedia, SourceTooLarge

from .base import JobInput, Output, Processor
from .media import (
    check_box,
    check_kind,
    image_output,
    image_output_choices,
    missing_library,
    open_checked,
    still_output,
)

if TYPE_CHECKING:
    from fileresponse.conf import Config
    from fileresponse.derivatives.spec import Spec

    from .jobs import ImageResult

__all__ = ["PdfJob", "PdfProcessor", "render_scale"]

#: Pages carry text and lines: PNG keeps them sharp.
DEFAULT_FORMAT: Final = "png"
#: PDFium is not thread-safe: one render at a time per process (the ``thread`` executor).
_PDFIUM_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class PdfJob:
    """One page of a document to render: which, how (``spec``'s image tokens), the limits."""

    page: int
    spec: Spec
    output_format: str
    max_pages: int
    max_source_pixels: int
    path: str | None = None
    data: bytes | None = None
    identity: tuple[int, int] | None = None

    @property
    def processor(self) -> str:
        return f"{__name__}.PdfProcessor"


def render_scale(spec: Spec, width: float, height: float) -> float:
    """Pixels per point to render a page of ``width`` x ``height`` points at for ``spec``.

    ``fit``: the page inside the box; ``fill``: the page covering the box;
    ``crop`` and no box: one pixel per point.
    """
    if spec.mode == "crop" or (spec.width is None and spec.height is None):
        return 1.0
    ratios = [
        side / page_side
        for side, page_side in ((spec.width, width), (spec.height, height))
        if side is not None
    ]
    return max(ratios) if spec.mode == "fill" else min(ratios)


class PdfProcessor(Processor):
    """PDF documents: a page as an image (``page=N``, then the image tokens)."""

    kind = "pdf"
    suffixes: ClassVar[frozenset[str]] = frozenset({".pdf"})

    def preload(self, config: Config) -> Sequence[str]:
        return [f"{__package__}.image"]

    def version(self, config: Config) -> str:
        return "pdfium-1"

    def unavailable(self, config: Config) -> str | None:
        return missing_library(self.kind, config)

    def check(self, spec: Spec, config: Config) -> None:
        check_kind(spec, self.kind)
        check_box(spec, config)

    def choose_output(
        self, spec: Spec, source_name: str, accept: str | None, config: Config
    ) -> tuple[Output, bool]:
        return image_output(spec, accept, config, default=DEFAULT_FORMAT)

    def output(self, output_format: str, config: Config) -> Output:
        return still_output(output_format, config)

    def output_choices(self, spec: Spec, source_name: str, config: Config) -> list[Output]:
        return image_output_choices(spec, config, default=DEFAULT_FORMAT)

    def job(self, spec: Spec, output: Output, source: JobInput, config: Config) -> PdfJob:
        assert spec.page is not None
        return PdfJob(
            page=spec.page,
            spec=spec,
            output_format=output.format,
            max_pages=config.DERIVATIVES_MAX_PAGES,
            max_source_pixels=config.DERIVATIVES_MAX_SOURCE_PIXELS,
            path=source.path,
            data=source.data,
            identity=source.identity,
        )

    @staticmethod
    def run(job: PdfJob) -> ImageResult:
        from .image import finish_image

        with _PDFIUM_LOCK, _document(job) as document:
            pages = len(document)
            if pages > job.max_pages:
                raise SourceTooLarge(f"document too long: {pages} pages (limit {job.max_pages})")
            if not 1 <= job.page <= pages:
                raise BeyondSource(f"page {job.page} of a document of {pages} pages")
            page = _call(lambda: document[job.page - 1])
            width, height = page.get_size()
            if not (width > 0 and height > 0):
                raise CorruptMedia(f"page {job.page} has no size")
            scale = render_scale(job.spec, width, height)
            pixels = math.ceil(width * scale) * math.ceil(height * scale)
            if pixels > job.max_source_pixels:
                raise SourceTooLarge(
                    f"page too large to render: {pixels} pixels (limit {job.max_source_pixels})"
                )
            image = _call(lambda: page.render(scale=scale).to_pil())
        # PDFium rounds the bitmap's sides up: keep the pixels the page covers (rounded).
        covered = (max(1, round(width * scale)), max(1, round(height * scale)))
        if image.size != covered:
            image = image.crop((0, 0, *covered))
        return finish_image(image, job.spec, job.output_format)


@contextmanager
def _document(job: PdfJob) -> Iterator[Any]:
    """The job's document, open (from the file that was stat'ed, or the bytes given)."""
    try:
        import pypdfium2
    except ImportError as error:
        raise ImproperlyConfigured(
            f"pdf derivatives need pypdfium2: pip install 'fileresponse[pdf]' ({error})"
        ) from error
    if job.path is not None:
        with os.fdopen(open_checked(job.path, job.identity), "rb") as file:
            document = _call(lambda: pypdfium2.PdfDocument(file))
            try:
                yield document
            finally:
                document.close()
        return
    if job.data is None:
        raise ValueError("a PdfJob needs a path or data")
    document = _call(lambda: pypdfium2.PdfDocument(job.data))
    try:
        yield document
    finally:
        document.close()


def _call(function: Any) -> Any:
    """``function()``, with PDFium's errors (a corrupt or encrypted file) as ``CorruptMedia``."""
    import pypdfium2

    try:
        return function()
    except pypdfium2.PdfiumError as error:
        raise CorruptMedia(f"source is not a PDF that can be read ({error})") from None
