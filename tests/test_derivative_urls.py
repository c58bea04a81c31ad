"""The URLs the front writes, through the real URLconf and view of ``fileresponse.derivatives``."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.template import Context, Template
from django.test import Client
from django.urls import include, path, resolve
from PIL import Image

from fileresponse.derivatives import derivative_image, derivative_url
from fileresponse.derivatives.executor import reset_executor
from fileresponse.derivatives.signing import sign

urlpatterns = [path("derivatives/", include("fileresponse.derivatives.urls"))]


@pytest.fixture(autouse=True)
def configured(settings: Any, tmp_path: Path) -> Iterator[Path]:
    media = tmp_path / "media"
    media.mkdir()
    Image.new("RGB", (800, 600), (200, 30, 30)).save(media / "photo.jpg", quality=90)
    settings.ROOT_URLCONF = __name__
    settings.MEDIA_ROOT = str(media)
    settings.STORAGES = {
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(media)},
        },
    }
    settings.FILERESPONSE = {
        "DERIVATIVES_ROOT": str(tmp_path / "derivatives"),
        "DERIVATIVES_EXECUTOR": "thread",
        "DERIVATIVES_LOCK_DIR": str(tmp_path / "locks"),
    }
    reset_executor()
    yield media
    reset_executor()


def decoded(url: str) -> Image.Image:
    response = Client().get(url)
    assert response.status_code == 200, (response.status_code, url)
    body = response.getvalue()
    return Image.open(io.BytesIO(body))


def test_the_urlconf_names_the_view() -> None:
    url = derivative_url("photo.jpg", "300x200 fill")
    match = resolve(url)
    assert match.view_name == "fileresponse:derivative"
    assert set(match.kwargs) == {"signature", "options", "name"}


def test_a_written_url_gives_the_derivative() -> None:
    image = decoded(derivative_url("photo.jpg", "300x200 fill webp", version=1))
    assert (image.format, image.size) == ("WEBP", (300, 200))


def test_every_url_of_an_img_gives_the_size_it_announces() -> None:
    html = Template(
        "{% load fileresponse %}{% fileprocessor name %}200x100 fill{% endfileprocessor %}"
    ).render(Context({"name": "photo.jpg"}))
    srcset = re.search(r'srcset="([^"]+)"', html)
    assert srcset is not None
    candidates = [item.rsplit(" ", 1) for item in srcset.group(1).split(", ")]
    assert [density for _, density in candidates] == ["1x", "2x"]
    sizes = [decoded(url).size for url, _ in candidates]
    assert sizes == [(200, 100), (400, 200)]
    assert 'width="200" height="100"' in html


def test_announced_sizes_match_the_engine_for_fit_and_small_sources() -> None:
    for spec in ("300x300", "x150", "1000x1000 fill", "1000x100 fill", "500x500 crop"):
        image = derivative_image("photo.jpg", spec, source_size=(800, 600))
        assert decoded(image.url).size == (image.width, image.height), spec


def test_tampered_and_unsigned_urls_are_403_and_do_no_work(configured: Path) -> None:
    url = derivative_url("photo.jpg", "300x200 fill")
    tampered = [
        url.replace("300x200", "301x200"),
        url.replace("photo.jpg", "photo.jpeg"),
        url.replace("/derivatives/", "/derivatives/A", 1)[:-1],
        "/derivatives/" + "A" * 27 + "/300x200/photo.jpg",
    ]
    for variant in tampered:
        assert Client().get(variant).status_code == 403, variant
    assert not (configured.parent / "derivatives").exists()


def test_a_signed_bad_spec_is_400() -> None:
    options = "300x200,sepia"
    response = Client().get(f"/derivatives/{sign(f'{options}/photo.jpg')}/{options}/photo.jpg")
    assert response.status_code == 400
