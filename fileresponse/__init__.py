"""fileresponse: async file responses for Django.

The public API lives in submodules, imported where needed so that importing
``fileresponse`` does not load Django:

- :class:`fileresponse.http.AsyncFileResponse`
- :func:`fileresponse.views.serve`
- :func:`fileresponse.asgi.get_asgi_application`,
  :class:`fileresponse.handlers.AsyncFileASGIHandler`
- :class:`fileresponse.fastpath.FastPathApplication` (``FILERESPONSE["FAST_PATHS"]``),
  :func:`fileresponse.staticfiles.serve_static`
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
