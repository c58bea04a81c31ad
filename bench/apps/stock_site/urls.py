from django.conf import settings
from django.urls import path
from django.views.static import serve

# django.views.static.serve returns a django.http.FileResponse (a sync iterator);
# under ASGI, Django consumes it with sync_to_async(list) before sending.
urlpatterns = [
    path("files/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}),
]
