"""Processed derivatives of files (thumbnails, conversions), made when first requested.

Pages only write signed URLs; the derivative view makes each derivative on the
first request for it, off the event loop, once.

- :func:`derivative_url`, :func:`derivative`, :func:`derivative_image`: the
  Python API (the template tags in ``{% load fileresponse %}`` use it).
- :func:`parse_spec`, :class:`Spec`, :class:`InvalidSpec`: the spec language
  (:mod:`fileresponse.derivatives.spec`).
- :func:`resolve_request`, :class:`DerivativeRequest`,
  :class:`InvalidSignature`: the URL format and its verification
  (:mod:`fileresponse.derivatives.signing`).
- ``path("derivatives/", include("fileresponse.derivatives.urls"))``: the view.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fileresponse.derivatives.links import (
        Derivative,
        DerivativeImage,
        derivative,
        derivative_image,
        derivative_url,
    )
    from fileresponse.derivatives.signing import (
        DerivativeRequest,
        InvalidSignature,
        resolve_request,
    )
    from fileresponse.derivatives.spec import InvalidSpec, Spec, parse_spec

__all__ = [
    "Derivative",
    "DerivativeImage",
    "DerivativeRequest",
    "InvalidSignature",
    "InvalidSpec",
    "Spec",
    "derivative",
    "derivative_image",
    "derivative_url",
    "parse_spec",
    "resolve_request",
]

# Imported on first use, so that processing workers, which import
# ``fileresponse.derivatives.processors``, do not load the URL and HTML machinery.
_MODULES = {
    "Derivative": "links",
    "DerivativeImage": "links",
    "derivative": "links",
    "derivative_image": "links",
    "derivative_url": "links",
    "DerivativeRequest": "signing",
    "InvalidSignature": "signing",
    "resolve_request": "signing",
    "InvalidSpec": "spec",
    "Spec": "spec",
    "parse_spec": "spec",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
