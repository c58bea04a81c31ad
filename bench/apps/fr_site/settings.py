"""Django site served by fileresponse (peers fileresponse-uvicorn, fileresponse-granian)."""

from _common import *  # noqa: F403

ROOT_URLCONF = "fr_site.urls"
INSTALLED_APPS = ["fileresponse"]
