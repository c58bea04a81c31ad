"""Derivatives with MinIO: sources in a bucket, derivatives in a bucket, presigned redirects."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("PIL")

from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.test import AsyncClient
from django.urls import include, path

from fileresponse.derivatives import executor as executor_module
from fileresponse.derivatives.links import derivative_url
from fileresponse.derivatives.maintenance import purge
from fileresponse.derivatives.pipeline import clear_negative_cache
from fileresponse.derivatives.store import get_store
from tests import images
from tests.s3server import S3Target

pytestmark = pytest.mark.minio

urlpatterns = [path("derivatives/", include("fileresponse.derivatives.urls"))]


@pytest.fixture
def on_minio(settings: Any, s3: S3Target, tmp_path: Any) -> Iterator[str]:
    """Sources and derivatives in the test bucket, under a fresh prefix; yields the prefix."""
    prefix = f"derivative-tests-{secrets.token_hex(4)}"
    settings.ROOT_URLCONF = __name__
    settings.MEDIA_ROOT = str(tmp_path)
    settings.STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "photos": {
            "BACKEND": "fileresponse.storage.MinioStorage",
            "OPTIONS": s3.storage_options(prefix=f"{prefix}/photos"),
        },
        "derivatives": {
            "BACKEND": "fileresponse.storage.MinioStorage",
            "OPTIONS": s3.storage_options(prefix=f"{prefix}/derivatives", presigned_ttl=300),
        },
    }
    settings.FILERESPONSE = {
        "DERIVATIVES_SOURCE_STORAGES": ("default", "photos"),
        "DERIVATIVES_STORAGE": "derivatives",
        "DERIVATIVES_EXECUTOR": "thread",
        "DERIVATIVES_LOCK_DIR": str(tmp_path / "locks"),
    }
    clear_negative_cache()
    storages["photos"].save("cat.jpg", ContentFile(images.jpeg((900, 600))))
    storages["photos"].save("broken.jpg", ContentFile(b"not a jpeg at all"))
    yield prefix
    executor_module.reset_executor()


def keys(s3: S3Target, prefix: str) -> list[str]:
    client = s3.client()
    return sorted(
        item.object_name for item in client.list_objects(s3.bucket, prefix=prefix, recursive=True)
    )


async def read(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join([chunk async for chunk in response.streaming_content])
    return bytes(response.content)


async def test_source_and_derivatives_on_minio(on_minio: str, s3: S3Target) -> None:
    url = derivative_url("cat.jpg", "300x200 fill webp", storage="photos")
    client = AsyncClient()
    miss = await client.get(url)
    assert miss.status_code == 200
    data = await read(miss)
    assert images.decode(data).size == (300, 200)
    stored = [key for key in keys(s3, f"{on_minio}/derivatives/") if key.endswith(".webp")]
    assert len(stored) == 1
    assert stored[0].endswith("/300x200_fill.webp")
    assert keys(s3, f"{on_minio}/derivatives/.locks/") == [], "lease released"

    hit = await client.get(url, headers={"Range": "bytes=10-19"})
    assert hit.status_code == 206
    assert await read(hit) == data[10:20]
    assert hit["ETag"]


async def test_bad_source_on_minio_stores_nothing(on_minio: str, s3: S3Target) -> None:
    response = await AsyncClient().get(derivative_url("broken.jpg", "100x100", storage="photos"))
    assert response.status_code == 422
    assert keys(s3, f"{on_minio}/derivatives/") == []
    missing = await AsyncClient().get(derivative_url("nope.jpg", "100x100", storage="photos"))
    assert missing.status_code == 404


async def test_presigned_redirect(on_minio: str, s3: S3Target, settings: Any) -> None:
    httpx = pytest.importorskip("httpx")
    settings.FILERESPONSE = {**settings.FILERESPONSE, "DERIVATIVES_SERVE": "redirect"}
    response = await AsyncClient().get(derivative_url("cat.jpg", "120x80", storage="photos"))
    assert response.status_code == 302
    location = response["Location"]
    assert "X-Amz-Signature=" in location
    async with httpx.AsyncClient() as http:
        fetched = await http.get(location)
    assert fetched.status_code == 200
    assert images.decode(fetched.content).size == (120, 80)


async def test_purge_on_minio(on_minio: str, s3: S3Target) -> None:
    client = AsyncClient()
    assert (
        await client.get(derivative_url("cat.jpg", "64x64", storage="photos"))
    ).status_code == 200
    assert any(key.endswith("64x64.jpg") for key in keys(s3, f"{on_minio}/derivatives/"))
    storages["photos"].delete("cat.jpg")
    from asgiref.sync import sync_to_async

    report = await sync_to_async(purge)(get_store())
    assert report.sources_gone == 1
    assert keys(s3, f"{on_minio}/derivatives/pillow-1/") == []
