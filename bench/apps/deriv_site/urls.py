from django.conf import settings
from django.urls import include, path

from fileresponse.views import serve

urlpatterns = [
    path("files/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}),
    path("derivatives/", include("fileresponse.derivatives.urls")),
]
