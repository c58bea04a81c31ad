"""URLconf for the test suite.

- ``files/``: ``fileresponse.views.serve`` over ``MEDIA_ROOT``.
- ``stock/``: Django's own ``FileResponse``, for comparison.
- ``attachment/``: ``AsyncFileResponse(..., as_attachment=True)``.
- ``storage/<alias>/``: ``fileresponse.views.serve`` with ``storage=<alias>`` (STORAGES).
- ``scope-extensions``: the ASGI extensions the server offered.
- ``request-thread``: which thread ran the request's sync code (a sync view).
- ``uploads/``, ``uploads/<pk>``: a form saved in the background; ``queued/<name>``: a body
  saved in the QueuedStorage ``queued`` (``tests.project.uploads``).
"""

from django.urls import path

from fileresponse.views import serve
from tests.project.uploads import photo_state, save_queued, upload_photo
from tests.project.views import attachment, request_thread, scope_extensions, stock_file

urlpatterns = [
    path("files/<path:path>", serve, name="files"),
    path("stock/<path:path>", stock_file, name="stock"),
    path("attachment/<path:path>", attachment, name="attachment"),
    path("storage/<str:storage>/<path:path>", serve, name="storage"),
    path("scope-extensions", scope_extensions, name="scope-extensions"),
    path("request-thread", request_thread, name="request-thread"),
    path("uploads/", upload_photo, name="upload-photo"),
    path("uploads/<int:pk>", photo_state, name="photo-state"),
    path("queued/<path:name>", save_queued, name="save-queued"),
]
