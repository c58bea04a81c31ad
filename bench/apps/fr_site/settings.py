"""Django site served by fileresponse (peers fileresponse-worker, -uvicorn, -granian).

With BENCH_MIDDLEWARE=example (peers *-mw) it has the example project's two middlewares.
"""

from _common import *  # noqa: F403

ROOT_URLCONF = "fr_site.urls"
INSTALLED_APPS = ["fileresponse"]
