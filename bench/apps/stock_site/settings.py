"""Django site with stock file serving (peer django-uvicorn).

django.views.static.serve returns a django.http.FileResponse.
"""

from _common import *  # noqa: F403

ROOT_URLCONF = "stock_site.urls"
INSTALLED_APPS: list[str] = []
