"""ASGI entry point: fileresponse's application, wrapped by the fast path (FAST_PATHS is set)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fastpath_site.settings")

from fileresponse.asgi import get_asgi_application

application = get_asgi_application()
