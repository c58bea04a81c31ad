"""The delivery protocol: any storage may tell the views how its files are delivered.

MinioStorage is one such storage (its modes against a real server are in
tests/test_minio_storage.py and tests/test_storage_live.py). Here a storage
the library knows nothing about implements the protocol, and the views follow
it exactly as they follow MinioStorage; storages without it stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import FileSystemStorage
from django.test import AsyncRequestFactory, override_settings

from fileresponse.sources.base import Source
from fileresponse.sources.filesystem import relative_path_parts
from fileresponse.sources.storage import StorageSource, storage_source
from fileresponse.storage import DeliveringStorage, MinioStorage
from fileresponse.views import serve_storage
from tests.inprocess import call_asgi, patched
from tests.project.storages import OpaqueStorage


class CdnStorage(OpaqueStorage):
    """Files on disk, redirected to a CDN by default, streamed through a source of its own."""

    delivery = "public"
    sources_made: list[str] = []  # noqa: RUF012  (shared on purpose: STORAGES builds its own)

    async def adelivery_url(self, name: str, mode: str) -> str:
        return f"https://cdn.example/{mode}/{name}"

    def source(self, relative_path: str) -> Source:
        self.sources_made.append(relative_path)
        return StorageSource(self, "/".join(relative_path_parts(relative_path)))


@pytest.fixture
def cdn(tmp_path: Path) -> Any:
    (tmp_path / "a.txt").write_bytes(b"0123456789")
    CdnStorage.sources_made.clear()
    backend = {"BACKEND": f"{__name__}.CdnStorage", "OPTIONS": {"location": str(tmp_path)}}
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "cdn": backend,
        "opaque": {**backend, "BACKEND": "tests.project.storages.OpaqueStorage"},
    }
    with override_settings(STORAGES=storages):
        yield


def test_which_storages_deliver_themselves(tmp_path: Path) -> None:
    assert isinstance(CdnStorage(str(tmp_path)), DeliveringStorage)
    assert isinstance(MinioStorage(endpoint="127.0.0.1:9", bucket="media"), DeliveringStorage)
    assert not isinstance(OpaqueStorage(str(tmp_path)), DeliveringStorage)
    assert not isinstance(FileSystemStorage(tmp_path), DeliveringStorage)


def test_the_source_of_a_delivering_storage_is_its_own(tmp_path: Path) -> None:
    CdnStorage.sources_made.clear()
    storage_source(CdnStorage(str(tmp_path)), "dir/a.txt")

    assert CdnStorage.sources_made == ["dir/a.txt"]


async def test_the_storage_default_delivery_is_followed(cdn: None) -> None:
    public = await call_asgi(patched(), "/storage/cdn/dir/a.txt")
    opaque = await call_asgi(patched(), "/storage/opaque/a.txt")

    assert public.status == 302
    assert public.header("Location") == "https://cdn.example/public/dir/a.txt"
    assert public.header("Cache-Control") is None
    assert (opaque.status, opaque.body) == (200, b"0123456789")


async def test_the_view_delivery_wins_over_the_storage(tmp_path: Path) -> None:
    CdnStorage.sources_made.clear()
    (tmp_path / "a.txt").write_bytes(b"0123456789")
    storage = CdnStorage(str(tmp_path))
    request = AsyncRequestFactory().get("/a.txt", headers={"Range": "bytes=2-4"})

    presigned = await serve_storage(request, "a.txt", storage, delivery="presigned")
    streamed = await serve_storage(request, "a.txt", storage, delivery="stream")

    assert presigned.status_code == 302
    assert presigned["Location"] == "https://cdn.example/presigned/a.txt"
    assert presigned["Cache-Control"] == "private, no-store"
    assert streamed.status_code == 206
    assert CdnStorage.sources_made == ["a.txt"]


async def test_unsafe_paths_are_refused_before_any_redirect(cdn: None) -> None:
    response = await call_asgi(patched(), "/storage/cdn/../secret.txt")

    assert response.status == 404
