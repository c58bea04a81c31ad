"""``{% thumbnail item 360 270 sizes="..." %}``: a responsive ``<img>`` of a media item.

One derivative per width of the ``srcset`` (``w`` descriptors, so that the
browser picks by the column's width in ``sizes``), each URL signed with the
item's version (a replaced file gets new URLs). Of an image whose pixels are
known, widths that would be upscaled are left out and each descriptor is the
width the derivative really has. Built by ``fileresponse.derivatives.derivative``:
no file is read while the page renders.
"""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from fileresponse.derivatives import derivative
from gallery.models import Media

register = template.Library()

#: The widths of a srcset, as factors of the 1x box.
FACTORS = (0.5, 1, 1.5, 2, 3)


@register.simple_tag
def thumbnail(
    item: Media, width: int, height: int, sizes: str = "", css_class: str = "thumb"
) -> SafeString | str:
    if not item.file:
        return ""
    candidates: dict[int, str] = {}
    src = ""
    for factor in FACTORS:
        box = (round(width * factor), round(height * factor))
        spec = item.thumbnail_spec(*box)
        if spec is None:
            return ""
        made = derivative(item.file, spec, version=item.updated, source_size=item.source_size)
        real_width = made.width or box[0]
        if factor == 1:
            src = made.url
        candidates.setdefault(real_width, made.url)
    srcset = ", ".join(f"{url} {candidate}w" for candidate, url in sorted(candidates.items()))
    return format_html(
        '<img class="{}" src="{}" srcset="{}" sizes="{}" width="{}" height="{}" alt="{}"'
        ' loading="lazy" decoding="async">',
        css_class,
        src,
        srcset,
        sizes or f"{width}px",
        width,
        height,
        item.title,
    )
