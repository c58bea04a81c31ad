"""Django site with a view returning django.http.FileResponse (peer django-fileresponse)."""

from _common import *  # noqa: F403

ROOT_URLCONF = "djfile_site.urls"
INSTALLED_APPS: list[str] = []
