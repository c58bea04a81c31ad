from django.urls import include, path
from gallery.views import gallery

from example import views
from fileresponse.views import serve

urlpatterns = [
    path("", views.index, name="index"),
    # The default storage: MEDIA_ROOT on disk, or the MinIO bucket with STORAGE=minio.
    path("files/<path:path>", serve, {"storage": "default"}, name="files"),
    # Thumbnails and other derivatives, made on first request (signed URLs).
    path("derivatives/", include("fileresponse.derivatives.urls")),
    path("gallery/", gallery, name="gallery"),
]
