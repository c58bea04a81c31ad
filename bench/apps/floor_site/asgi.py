"""ASGI entry point: Django's stock handler."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "floor_site.settings")

from django.core.asgi import get_asgi_application

application = get_asgi_application()
