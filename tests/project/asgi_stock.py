"""ASGI entry point with Django's stock ``ASGIHandler``, for comparison."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.project.settings")

from django.core.asgi import get_asgi_application

application = get_asgi_application()
