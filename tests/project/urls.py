"""URLconf for the test suite.

- ``files/``: ``fileresponse.views.serve`` over ``MEDIA_ROOT``.
- ``stock/``: Django's own ``FileResponse``, for comparison.
- ``attachment/``: ``AsyncFileResponse(..., as_attachment=True)``.
- ``storage/<alias>/``: ``fileresponse.views.serve`` with ``storage=<alias>`` (STORAGES).
- ``scope-extensions``: the ASGI extensions the server offered.
"""

from django.urls import path

from fileresponse.views import serve
from tests.project.views import attachment, scope_extensions, stock_file

urlpatterns = [
    path("files/<path:path>", serve, name="files"),
    path("stock/<path:path>", stock_file, name="stock"),
    path("attachment/<path:path>", attachment, name="attachment"),
    path("storage/<str:storage>/<path:path>", serve, name="storage"),
    path("scope-extensions", scope_extensions, name="scope-extensions"),
]
