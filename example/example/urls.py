from django.contrib import admin
from django.urls import include, path
from gallery import views as library

from example import views
from fileresponse.staticfiles import serve_static
from fileresponse.views import serve

urlpatterns = [
    # The media library: gallery, items, uploads.
    path("", library.gallery, name="gallery"),
    path("media/<int:pk>/", library.detail, name="media-detail"),
    path("media/<int:pk>/state", library.state, name="media-state"),
    path("media/<int:pk>/download", library.download, name="media-download"),
    path("upload/", library.upload, name="upload"),
    # Every file of the default storage, and the files themselves.
    path("storage/", views.index, name="index"),
    # The default storage: MEDIA_ROOT on disk, the MinIO bucket, or the queued storage.
    path("files/<path:path>", serve, {"storage": "default"}, name="files"),
    # Thumbnails, posters, waveforms, pages and transcodes, made on first request (signed URLs).
    path("derivatives/", include("fileresponse.derivatives.urls")),
    # STATIC_ROOT after collectstatic (the admin's CSS): precompressed variants, hashed names.
    path("static/<path:path>", serve_static),
    path("admin/", admin.site.urls),
]
