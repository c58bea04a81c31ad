"""Uploads of the media library, saved in the background by ``fileresponse.uploads``.

With ``BACKGROUND_UPLOADS`` (settings.ini) the view stages the file and
answers at once; a job (this process's threads, or a Celery worker) attaches
it to the row, makes the derivatives its pages show first, then
:func:`after_upload` reads its size and bumps its version. Without it, the
file is saved in the request.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from gallery.describe import describe
from gallery.models import Media

#: The thumbnail of the gallery and the admin, made with the upload (the column's 1x).
GALLERY_BOX = (360, 270)
ADMIN_BOX = (96, 72)


def warm_specs(media: Media) -> list[str]:
    """What the first visit of the item's pages asks for, made before it is shown."""
    specs = [
        spec
        for spec in (media.thumbnail_spec(*GALLERY_BOX), media.thumbnail_spec(*ADMIN_BOX))
        if spec is not None
    ]
    if media.kind == Media.Kind.VIDEO:
        # Stored, the transcode is a file with ranges: seekable from the first play.
        specs += [VIDEO_POSTER, VIDEO_TRANSCODE]
    if media.kind == Media.Kind.AUDIO:
        specs.append(AUDIO_WAVEFORM)
    if media.kind == Media.Kind.PDF:
        specs.append(PDF_PAGE.format(page=1))
    return specs


VIDEO_POSTER = "poster t=10% 960x webp"
VIDEO_TRANSCODE = "mp4 360p"
AUDIO_WAVEFORM = "waveform 960x160 png"
AUDIO_TRANSCODE = "mp3 128k"
PDF_PAGE = "page={page} 600x webp"
#: Sounds that browsers play as they are; others get AUDIO_TRANSCODE.
PLAYABLE_AUDIO = (".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".wav", ".flac")


def after_upload(media: Media, upload: Any) -> None:
    """The callback of ``save_in_background``: describe the file, give it a new version."""
    media.refresh_from_db()
    describe(media)
    Media.objects.filter(pk=media.pk).update(updated=timezone.now())


def save_now(media: Media, upload: Any) -> None:
    """Without background uploads: save the file in the request, then describe it."""
    media.file.save(media.original_name, upload, save=True)
    describe(media)
