"""``get_asgi_application()``: Django's, with the handler of :mod:`fileresponse.handlers`."""

from __future__ import annotations

import django

from .handlers import AsyncFileASGIHandler

__all__ = ["get_asgi_application"]


def get_asgi_application() -> AsyncFileASGIHandler:
    """The ASGI callable for a project, as ``django.core.asgi.get_asgi_application``.

    Use it in ``asgi.py`` instead of Django's::

        from fileresponse.asgi import get_asgi_application

        application = get_asgi_application()
    """
    django.setup(set_prefix=False)
    return AsyncFileASGIHandler()
