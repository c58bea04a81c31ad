"""ASGI entry point with fileresponse's handler (``AsyncFileASGIHandler``)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.project.settings")

from fileresponse.asgi import get_asgi_application

application = get_asgi_application()
