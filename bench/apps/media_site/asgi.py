"""ASGI entry point of the media benchmark site, with fileresponse's handler."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "media_site.settings")

from fileresponse.asgi import get_asgi_application

application = get_asgi_application()
