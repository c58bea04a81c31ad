"""tests/project's URLs, plus ``derivatives/`` and ``static/``: the fast paths' Django routes."""

from django.urls import include, path

from fileresponse.staticfiles import serve_static
from tests.project.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    *project_urlpatterns,
    path("derivatives/", include("fileresponse.derivatives.urls")),
    path("static/<path:path>", serve_static, name="static"),
]
