"""Template tags that write derivative URLs, and never process or touch storage.

``{% load fileresponse %}``, then:

``{% derivative source "spec" [options] [as var] %}``
    The signed URL of a derivative, for ``src`` or ``srcset``. Options:
    ``version=``, ``storage=``, ``source_width=``/``source_height=`` (see
    below)::

        <img src="{% derivative photo.image "300x200 fill webp" version=photo.updated_at %}">

    With ``as var`` nothing is written and ``var`` is a
    :class:`~fileresponse.derivatives.links.Derivative`: ``{{ var }}`` is the
    URL, ``{{ var.width }}``/``{{ var.height }}`` the size when the spec
    tells it (``fill``, ``crop``) or the source's size is given.

``{% fileprocessor source [options] [attributes] [as var] %}spec{% endfileprocessor %}``
    A ready ``<img>``: ``src``, a ``srcset`` with one derivative per density
    (``DERIVATIVES_DENSITIES``, default ``1x`` and ``2x``), ``width`` and
    ``height`` when known, ``alt=""``, ``loading="lazy"`` and
    ``decoding="async"``. The spec is the rendered body, so it may use
    variables. Options: ``version=``, ``storage=``, ``densities="1 1.5 2"``,
    ``source_width=``/``source_height=`` (the source's size when the page
    knows it, e.g. from an ``ImageField``'s ``width_field``: then ``fit``
    specs get ``width``/``height`` too, and densities the source is too
    small for are left out; densities beyond ``DERIVATIVES_MAX_WIDTH``/
    ``_HEIGHT`` are always left out). Any other ``name=value`` becomes an attribute
    of the ``<img>`` (``_`` in names becomes ``-``: ``aria_label=``;
    ``None``/``False`` leave an attribute out, ``True`` writes it bare)::

        {% fileprocessor photo.image alt=photo.title class="thumb" %}
            300x200 fill crop=north webp q=80
        {% endfileprocessor %}

``source`` is a FieldFile, a storage name or an absolute path under a source
storage (see :func:`~fileresponse.derivatives.links.derivative`).

Errors (an invalid spec, an empty file field, a storage that is not a
derivative source): with ``DEBUG = True`` the tag raises
:class:`~django.template.TemplateSyntaxError` naming the problem, so it is
fixed during development; otherwise it writes nothing (``as var`` sets
``None``) and logs a warning on the ``fileresponse.derivatives`` logger, so
that one bad thumbnail does not take a page down in production. A missing
URLconf (``ImproperlyConfigured``) is always raised.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django import template
from django.conf import settings
from django.template.base import FilterExpression, NodeList, Parser, Token, token_kwargs
from django.template.context import Context
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString

from fileresponse.derivatives.links import derivative, derivative_image

__all__ = ["register"]

register = template.Library()
logger = logging.getLogger("fileresponse.derivatives")

_OPTIONS = ("version", "storage", "source_width", "source_height")
_IMAGE_OPTIONS = (*_OPTIONS, "densities")
_WHITESPACE = re.compile(r"\s+")


def _split_tag(
    parser: Parser, token: Token, positional: int
) -> tuple[list[FilterExpression], dict[str, FilterExpression], str | None]:
    """``tag a b key=value ... [as var]`` -> positional expressions, keyword expressions, var."""
    bits = token.split_contents()
    tag_name, bits = bits[0], bits[1:]
    target = None
    if len(bits) >= 2 and bits[-2] == "as":
        target = bits[-1]
        bits = bits[:-2]
    if len(bits) < positional:
        raise template.TemplateSyntaxError(
            f"{tag_name!r} takes {positional} argument(s) before its options"
        )
    arguments = [parser.compile_filter(bit) for bit in bits[:positional]]
    rest = bits[positional:]
    keywords = token_kwargs(rest, parser)
    if rest:
        raise template.TemplateSyntaxError(
            f"{tag_name!r}: unexpected {rest[0]!r} (options are name=value, then 'as var')"
        )
    return arguments, keywords, target


def _fail(error: Exception, tag_name: str, source: object, spec: object) -> None:
    """Raise in ``DEBUG``; otherwise log a warning (the tag then writes nothing)."""
    if settings.DEBUG:
        raise template.TemplateSyntaxError(f"{{% {tag_name} %}}: {error}") from error
    logger.warning("{%% %s %%} of %r by %r: %s", tag_name, source, spec, error)


def _source_size(options: dict[str, Any]) -> tuple[int, int] | None:
    width, height = options.pop("source_width", None), options.pop("source_height", None)
    if width is None or height is None:
        return None
    return (int(width), int(height))


def _densities(value: Any) -> tuple[float, ...] | None:
    if value is None:
        return None
    items = value.split() if isinstance(value, str) else value
    return tuple(float(str(item).removesuffix("x")) for item in items)


class DerivativeNode(template.Node):
    """``{% derivative source "spec" ... %}``."""

    def __init__(
        self,
        source: FilterExpression,
        spec: FilterExpression,
        options: dict[str, FilterExpression],
        target: str | None,
    ) -> None:
        self.source = source
        self.spec = spec
        self.options = options
        self.target = target

    def render(self, context: Context) -> str:
        source = self.source.resolve(context)
        spec = self.spec.resolve(context)
        options = {name: value.resolve(context) for name, value in self.options.items()}
        try:
            result = derivative(
                source,
                spec,
                version=options.get("version"),
                storage=options.get("storage"),
                source_size=_source_size(options),
            )
        except (ValueError, TypeError) as error:
            _fail(error, "derivative", source, spec)
            result = None
        if self.target is not None:
            context[self.target] = result
            return ""
        return "" if result is None else conditional_escape(result.url)


@register.tag("derivative")
def do_derivative(parser: Parser, token: Token) -> DerivativeNode:
    arguments, options, target = _split_tag(parser, token, 2)
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise template.TemplateSyntaxError(
            f"'derivative': unknown option(s) {', '.join(unknown)} (known: {', '.join(_OPTIONS)})"
        )
    return DerivativeNode(arguments[0], arguments[1], options, target)


class FileProcessorNode(template.Node):
    """``{% fileprocessor source ... %}spec{% endfileprocessor %}``."""

    def __init__(
        self,
        source: FilterExpression,
        nodelist: NodeList,
        options: dict[str, FilterExpression],
        target: str | None,
    ) -> None:
        self.source = source
        self.nodelist = nodelist
        self.options = options
        self.target = target

    def render(self, context: Context) -> SafeString | str:
        source = self.source.resolve(context)
        spec = _WHITESPACE.sub(" ", self.nodelist.render(context)).strip()
        values = {name: value.resolve(context) for name, value in self.options.items()}
        options = {name: values.pop(name) for name in _IMAGE_OPTIONS if name in values}
        attributes = {name.replace("_", "-"): value for name, value in values.items()}
        try:
            image = derivative_image(
                source,
                spec,
                version=options.get("version"),
                storage=options.get("storage"),
                source_size=_source_size(options),
                densities=_densities(options.get("densities")),
            )
            html = image.html(attributes)
        except (ValueError, TypeError) as error:
            _fail(error, "fileprocessor", source, spec)
            image, html = None, SafeString("")
        if self.target is not None:
            context[self.target] = image
            return ""
        return html


@register.tag("fileprocessor")
def do_fileprocessor(parser: Parser, token: Token) -> FileProcessorNode:
    arguments, options, target = _split_tag(parser, token, 1)
    nodelist = parser.parse(("endfileprocessor",))
    parser.delete_first_token()
    return FileProcessorNode(arguments[0], nodelist, options, target)
