"""What a media file is: its pixels, seconds or pages, read once it is in its storage.

Runs where the upload is attached (a job: threads of the web process, or a
Celery worker), never while a page renders.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator

from django.core.files.storage import Storage

from gallery.models import Media

logger = logging.getLogger("gallery")


@contextlib.contextmanager
def local_path(storage: Storage, name: str) -> Iterator[str]:
    """A path of the file ``name``: the storage's own, or a temporary copy of it."""
    try:
        yield storage.path(name)
        return
    except NotImplementedError:
        pass
    with tempfile.NamedTemporaryFile(suffix=name[name.rfind(".") :]) as copy:
        with storage.open(name, "rb") as source:
            shutil.copyfileobj(source, copy, 1024 * 1024)
        copy.flush()
        yield copy.name


def describe(media: Media) -> None:
    """Fill ``size`` and the kind's ``width``/``height``, ``duration`` or ``pages`` (saved)."""
    storage, name = media.file.storage, media.file.name
    fields: dict[str, object] = {"size": storage.size(name)}
    try:
        with local_path(storage, name) as path:
            fields.update(_measure(media.kind, path))
    except Exception as error:  # a file the kind's library cannot read: shown without them
        logger.warning("could not describe %s (%s): %s", name, media.kind, error)
    Media.objects.filter(pk=media.pk).update(**fields)


def _measure(kind: str, path: str) -> dict[str, object]:
    if kind == Media.Kind.IMAGE:
        from PIL import Image

        with Image.open(path) as image:
            return {"width": image.width, "height": image.height}
    if kind == Media.Kind.PDF:
        import pypdfium2

        document = pypdfium2.PdfDocument(path)
        try:
            return {"pages": len(document)}
        finally:
            document.close()
    if kind in (Media.Kind.VIDEO, Media.Kind.AUDIO):
        from fileresponse.conf import get_config
        from fileresponse.derivatives.processors.media import ffmpeg_path, probe

        info = probe(ffmpeg_path(get_config()), path, timeout=10)
        return {"width": info.width, "height": info.height, "duration": info.duration}
    return {}
