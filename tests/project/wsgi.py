"""WSGI entry point for the test project."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.project.settings")

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
