"""The media library: one ``Media`` row per uploaded image, video, sound or PDF.

The file is attached by a job when uploads are saved in the background
(``fileresponse.uploads``): until then ``file`` is empty and the row's upload
is ``pending``. ``updated`` is the version of its derivative URLs, so a
replaced file gets new thumbnails at once.
"""

from __future__ import annotations

import posixpath

from django.db import models
from django.urls import reverse

from fileresponse.derivatives.processors import processors

#: The kinds of the library: those of the library's processors, and everything else.
KINDS = ("image", "video", "audio", "pdf")


def kind_of(name: str) -> str:
    """``image``, ``video``, ``audio`` or ``pdf`` by the processor that claims the name, else
    ``other``."""
    for processor in processors():
        if processor.kind in KINDS and processor.claims(name):
            return processor.kind
    return "other"


class Media(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image"
        VIDEO = "video"
        AUDIO = "audio"
        PDF = "pdf"
        OTHER = "other"

    title = models.CharField(max_length=200)
    file = models.FileField(upload_to="library/", blank=True, max_length=255)
    #: The name the file had on the uploader's disk (any characters): the download's name.
    original_name = models.CharField(max_length=255)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.OTHER)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    #: Pixels of an image or video, seconds of a video or sound, pages of a PDF:
    #: read once the file is in place (``gallery.describe``).
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)
    pages = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created", "-pk")
        verbose_name_plural = "media"

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("media-detail", args=[self.pk])

    @property
    def extension(self) -> str:
        return posixpath.splitext(self.original_name)[1].lower()

    @property
    def source_size(self) -> tuple[int, int] | None:
        """The pixels of an image or a video (its posters'), for thumbnails never upscaled."""
        if self.kind in (self.Kind.IMAGE, self.Kind.VIDEO) and self.width and self.height:
            return (self.width, self.height)
        return None

    def thumbnail_spec(self, width: int, height: int) -> str | None:
        """The spec of a ``width`` x ``height`` picture of this item, or ``None`` (no picture)."""
        box = f"{width}x{height} fill webp"
        if self.kind == self.Kind.IMAGE:
            return box
        if self.kind == self.Kind.VIDEO:
            return f"poster t=10% {box}"
        if self.kind == self.Kind.PDF:
            return f"page=1 {width}x{height} fill crop=north webp"
        if self.kind == self.Kind.AUDIO:
            return f"waveform {width}x{height} png"
        return None
