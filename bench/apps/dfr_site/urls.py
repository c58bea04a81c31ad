"""The view of django_fileresponse's README ("Serve Files from an S3 Compatible Object Store")."""

from django.conf import settings
from django.urls import path

from fileresponse.http import AiobotocoreFileResponse


async def get_file(request, key):
    return AiobotocoreFileResponse(settings.BENCH_BUCKET, key, chunk_size=settings.BENCH_CHUNK_SIZE)


urlpatterns = [
    path("files/<path:key>", get_file),
]
