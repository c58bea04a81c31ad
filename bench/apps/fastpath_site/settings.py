"""fr_site with the ASGI fast path (peers fastpath-*): ``/files/`` answered before Django.

``FILERESPONSE["FAST_PATHS"] = {"/files/": {"root": DOC_ROOT}}``: the same view as
fr_site's URLconf (``fileresponse.views.serve``), without URL resolution, middleware
or request signals. The site has the example project's two middlewares (which the fast
path skips), as a site that needs a fast path has them.
"""

from _common import *  # noqa: F403
from _common import DOC_ROOT, EXAMPLE_MIDDLEWARE

ROOT_URLCONF = "fr_site.urls"
INSTALLED_APPS = ["fileresponse"]
MIDDLEWARE = list(EXAMPLE_MIDDLEWARE)
FILERESPONSE = {"FAST_PATHS": {"/files/": {"root": DOC_ROOT}}}
