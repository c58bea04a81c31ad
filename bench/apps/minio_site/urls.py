from django.urls import path

from fileresponse.views import serve

urlpatterns = [
    path("files/<path:path>", serve, {"storage": "minio"}),
]
