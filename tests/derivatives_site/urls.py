"""tests/project's URLs, plus ``derivatives/``."""

from django.urls import include, path

from tests.project.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    *project_urlpatterns,
    path("derivatives/", include("fileresponse.derivatives.urls")),
]
