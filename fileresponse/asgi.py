"""``get_asgi_application()``: Django's, with the handler of :mod:`fileresponse.handlers`.

With ``FILERESPONSE["FAST_PATHS"]`` set, the handler is wrapped by
:class:`fileresponse.fastpath.FastPathApplication`, which answers those
prefixes before Django's URL resolution and middleware.
"""

from __future__ import annotations

import django

from .conf import get_config
from .fastpath import FastPathApplication
from .handlers import AsyncFileASGIHandler

__all__ = ["get_asgi_application"]


def get_asgi_application() -> AsyncFileASGIHandler | FastPathApplication:
    """The ASGI callable for a project, as ``django.core.asgi.get_asgi_application``.

    Use it in ``asgi.py`` instead of Django's::

        from fileresponse.asgi import get_asgi_application

        application = get_asgi_application()
    """
    django.setup(set_prefix=False)
    handler = AsyncFileASGIHandler()
    if get_config().FAST_PATHS:
        return FastPathApplication(handler)
    return handler
