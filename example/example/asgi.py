"""ASGI entry point for the example project.

gunicorn --chdir example example.asgi:application -k fileresponse.workers.UvicornWorker
"""

import os

from fileresponse.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

application = get_asgi_application()
