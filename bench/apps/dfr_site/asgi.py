"""ASGI entry point with django_fileresponse 0.1.0's handler (its README's way)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dfr_site.settings")

from fileresponse.asgi import get_asgi_application

application = get_asgi_application()
