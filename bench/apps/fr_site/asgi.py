"""ASGI entry point with fileresponse's handler.

It streams AsyncFileResponse itself and uses http.response.pathsend when the server offers it.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fr_site.settings")

from fileresponse.asgi import get_asgi_application

application = get_asgi_application()
