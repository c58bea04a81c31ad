"""Only ``derivatives/``: the URLconf of the queue tests' servers and workers
(tests/derivative_queues.py), which need nothing else of tests/project."""

from django.urls import include, path

urlpatterns = [path("derivatives/", include("fileresponse.derivatives.urls"))]
