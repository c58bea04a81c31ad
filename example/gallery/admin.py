"""Django's admin for the media library, with a thumbnail column."""

from __future__ import annotations

import posixpath
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.safestring import SafeString

from gallery.describe import describe
from gallery.models import Media, kind_of
from gallery.templatetags.library import thumbnail
from gallery.uploads import ADMIN_BOX


@admin.register(Media)
class MediaAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("preview", "title", "kind", "original_name", "size", "updated")
    list_display_links = ("preview", "title")
    list_filter = ("kind",)
    search_fields = ("title", "original_name")
    readonly_fields = ("preview", "size", "width", "height", "duration", "pages", "updated")

    @admin.display(description="thumbnail")
    def preview(self, item: Media) -> SafeString | str:
        width, height = ADMIN_BOX
        return thumbnail(item, width, height, css_class="admin-thumb") or "-"

    def save_model(self, request: HttpRequest, item: Media, form: Any, change: bool) -> None:
        """A replaced file: its name, kind and measures anew (and, by ``updated``, new URLs)."""
        replaced = "file" in form.changed_data and item.file
        if replaced:
            item.original_name = posixpath.basename(item.file.name)
            item.kind = kind_of(item.original_name)
        super().save_model(request, item, form, change)
        if replaced:
            describe(item)
