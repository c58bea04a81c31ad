"""The upload form of the media library."""

from __future__ import annotations

import posixpath
from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from gallery.models import Media, kind_of


class UploadForm(forms.ModelForm):  # type: ignore[type-arg]
    upload = forms.FileField(label="File")

    class Meta:
        model = Media
        fields = ("title",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["title"].required = False
        self.fields["upload"].widget.attrs["accept"] = "image/*,video/*,audio/*,application/pdf"

    def clean_upload(self) -> Any:
        upload = self.cleaned_data["upload"]
        if upload.size > settings.MAX_UPLOAD_BYTES:
            limit = filesizeformat(settings.MAX_UPLOAD_BYTES)
            raise forms.ValidationError(f"Files up to {limit} only.")
        if kind_of(upload.name) == Media.Kind.OTHER:
            raise forms.ValidationError("An image, a video, a sound or a PDF, please.")
        return upload

    def save(self, commit: bool = True) -> Media:
        media: Media = super().save(commit=False)
        upload = self.cleaned_data["upload"]
        media.original_name = posixpath.basename(upload.name)
        media.title = media.title or posixpath.splitext(media.original_name)[0]
        media.kind = kind_of(upload.name)
        media.size = upload.size
        if commit:
            media.save()
        return media
