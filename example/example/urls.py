from django.conf import settings
from django.urls import path

from example import views
from fileresponse.views import serve

urlpatterns = [
    path("", views.index, name="index"),
    path("files/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}, name="files"),
]
