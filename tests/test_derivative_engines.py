"""Choosing the image engine: the setting, missing libraries, separate cache keys, workers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PIL")

from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient
from django.urls import include, path

from fileresponse.conf import get_config
from fileresponse.derivatives import executor as executor_module
from fileresponse.derivatives.executor import ProcessPoolJobExecutor
from fileresponse.derivatives.keys import derivative_name
from fileresponse.derivatives.links import derivative_url
from fileresponse.derivatives.pipeline import clear_negative_cache
from fileresponse.derivatives.processors import ENGINES, Engine, get_engine
from fileresponse.derivatives.processors.jobs import ImageJob
from fileresponse.derivatives.spec import parse_spec
from tests import images

urlpatterns = [path("derivatives/", include("fileresponse.derivatives.urls"))]


def vips_engine() -> Engine:
    try:
        return get_engine("vips")
    except ImproperlyConfigured as error:
        pytest.skip(str(error))


def test_the_setting_knows_the_engines(settings: Any) -> None:
    for name in ENGINES:
        settings.FILERESPONSE = {"DERIVATIVES_ENGINE": name}
        chosen = get_config().DERIVATIVES_ENGINE
        assert chosen == name
    settings.FILERESPONSE = {"DERIVATIVES_ENGINE": "imagemagick"}
    with pytest.raises(ImproperlyConfigured, match="DERIVATIVES_ENGINE must be one of"):
        get_config()


def test_unknown_engine_name() -> None:
    with pytest.raises(ImproperlyConfigured, match="unknown DERIVATIVES_ENGINE 'gd'"):
        get_engine("gd")


def test_vips_without_pyvips_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyvips", None)
    with pytest.raises(ImproperlyConfigured, match=r"pip install 'fileresponse\[vips\]'"):
        get_engine("vips")


def test_engine_versions_differ() -> None:
    pillow, vips = get_engine("pillow"), vips_engine()
    assert (pillow.version, vips.version) == ("pillow-1", "vips-1")
    names = {
        derivative_name("default", "a.jpg", "v1", parse_spec("300x200 fill"), "webp", engine=engine)
        for engine in (pillow.version, vips.version)
    }
    assert len(names) == 2


# ---------------------------------------------------------------- through the view


@pytest.fixture
def site(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """A media root with one photo; yields the derivative root."""
    media = tmp_path / "media"
    (media / "photos").mkdir(parents=True)
    (media / "photos" / "rotated.jpg").write_bytes(images.rotated_jpeg((400, 200), 6))
    settings.ROOT_URLCONF = __name__
    settings.MEDIA_ROOT = str(media)
    settings.STORAGES = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    derivatives = tmp_path / "derivatives"
    settings.FILERESPONSE = {"DERIVATIVES_ROOT": str(derivatives), "DERIVATIVES_EXECUTOR": "thread"}
    clear_negative_cache()
    yield derivatives
    executor_module.reset_executor()
    clear_negative_cache()


def engine_directories(root: Path, pattern: str) -> list[str]:
    """The top directories (engine versions) of the stored files matching ``pattern``."""
    return sorted(path.relative_to(root).parts[0] for path in root.rglob(pattern) if path.is_file())


async def test_each_engine_has_its_own_derivatives(site: Path, settings: Any) -> None:
    """The engine is the first segment of the cache key: switching makes new files."""
    vips_engine()
    url = derivative_url("photos/rotated.jpg", "100x100 webp")
    bodies = {}
    for engine in ("vips", "pillow", "vips"):
        settings.FILERESPONSE = {**settings.FILERESPONSE, "DERIVATIVES_ENGINE": engine}
        response = await AsyncClient().get(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "image/webp"
        data = b"".join([chunk async for chunk in response.streaming_content])
        decoded = images.decode(data)
        assert decoded.size == (50, 100)  # oriented: stored 400x200 with orientation 6
        assert images.close(decoded.getpixel((5, 5)), images.BOTTOM_LEFT)  # type: ignore[arg-type]
        bodies.setdefault(engine, data)
        assert data == bodies[engine]  # the second vips request is a hit on vips' file
    assert engine_directories(site, "*.webp") == ["pillow-1", "vips-1"]


def test_vips_jobs_run_in_the_process_pool(settings: Any, tmp_path: Path) -> None:
    """Worker processes preload the vips engine and run its jobs."""
    import asyncio

    vips_engine()
    settings.FILERESPONSE = {"DERIVATIVES_ENGINE": "vips"}
    source = tmp_path / "photo.jpg"
    source.write_bytes(images.jpeg((800, 600)))
    pool = ProcessPoolJobExecutor(max_workers=1)
    job = ImageJob(
        parse_spec("200x200 fill"), "avif", 10**8, 10**8, path=str(source), engine="vips"
    )
    try:
        result = asyncio.run(pool.run(job))
    finally:
        pool.shutdown()
    assert (result.width, result.height, result.format) == (200, 200, "avif")
    assert images.decode(result.data).size == (200, 200)
