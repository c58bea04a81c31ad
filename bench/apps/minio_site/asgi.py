"""ASGI entry point with fileresponse's handler."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "minio_site.settings")

from fileresponse.asgi import get_asgi_application

application = get_asgi_application()
