"""deriv_site with the ASGI fast path for its derivative URLs: the production setup.

Signed derivative URLs are their own authorisation, so ``/derivatives/`` is answered
before Django's URL resolution, middleware and request signals
(``fileresponse.fastpath``); ``/files/`` still goes through the URLconf.
"""

from .settings import *  # noqa: F403
from .settings import FILERESPONSE

FILERESPONSE = {**FILERESPONSE, "FAST_PATHS": {"/derivatives/": "derivatives"}}
