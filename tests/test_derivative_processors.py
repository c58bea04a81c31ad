"""The processor registry: a kind of source added by a test, served end to end.

``SwatchProcessor`` makes a PNG of one colour from a ``.swatch`` file (a hex
colour as text). Registered by the test, it runs in the real process pool
(its job names its class by dotted path, so a worker process imports it), is
stored and served by the same view, store and single-flight as images.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import AsyncClient
from django.urls import include, path

from fileresponse.conf import Config
from fileresponse.derivatives import derivative_url
from fileresponse.derivatives import executor as executor_module
from fileresponse.derivatives.exceptions import NotAnImage, UnsupportedFormat
from fileresponse.derivatives.pipeline import clear_negative_cache
from fileresponse.derivatives.processors import (
    JobInput,
    Output,
    Processor,
    processor_for,
    register_processor,
    unregister_processor,
)
from fileresponse.derivatives.spec import Spec

pytest.importorskip("PIL")

urlpatterns = [path("derivatives/", include("fileresponse.derivatives.urls"))]

PNG = Output("png", "png", "image/png")


@dataclass(frozen=True, slots=True)
class SwatchJob:
    width: int
    height: int
    path: str | None
    data: bytes | None

    @property
    def processor(self) -> str:
        return f"{__name__}.SwatchProcessor"


@dataclass(frozen=True, slots=True)
class SwatchResult:
    data: bytes
    summary: str


class SwatchProcessor(Processor):
    kind = "swatch"
    suffixes = frozenset({".swatch"})

    def version(self, config: Config) -> str:
        return "swatch-1"

    def check(self, spec: Spec, config: Config) -> None:
        if spec.width is None or spec.height is None or spec.width * spec.height > 10_000:
            raise UnsupportedFormat("a swatch needs a small box, e.g. 32x16")

    def choose_output(
        self, spec: Spec, source_name: str, accept: str | None, config: Config
    ) -> tuple[Output, bool]:
        return self.output(spec.format or "png", config), False

    def output(self, output_format: str, config: Config) -> Output:
        if output_format != "png":
            raise UnsupportedFormat("a swatch is a png")
        return PNG

    def output_choices(self, spec: Spec, source_name: str, config: Config) -> list[Output]:
        return [PNG]

    def job(self, spec: Spec, output: Output, source: JobInput, config: Config) -> SwatchJob:
        assert spec.width is not None
        assert spec.height is not None
        return SwatchJob(spec.width, spec.height, source.path, source.data)

    @staticmethod
    def run(job: SwatchJob) -> SwatchResult:
        from PIL import Image, ImageColor

        if job.path is not None:
            with open(job.path, "rb") as file:
                text = file.read(100)
        else:
            text = job.data or b""
        try:
            color = ImageColor.getrgb(text.decode().strip())
        except ValueError:
            raise NotAnImage("not a colour") from None
        buffer = io.BytesIO()
        Image.new("RGB", (job.width, job.height), color).save(buffer, "PNG")
        return SwatchResult(buffer.getvalue(), f"{job.width}x{job.height} swatch {color}")


@pytest.fixture
def swatches(settings: Any, tmp_path: Path) -> Iterator[Path]:
    media = tmp_path / "media"
    media.mkdir()
    (media / "orange.swatch").write_text("#ff8800\n")
    (media / "nonsense.swatch").write_text("not a colour\n")
    settings.ROOT_URLCONF = __name__
    settings.MEDIA_ROOT = str(media)
    settings.STORAGES = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    settings.FILERESPONSE = {
        "DERIVATIVES_ROOT": str(tmp_path / "derivatives"),
        "DERIVATIVES_EXECUTOR": "process",
        "DERIVATIVES_WORKERS": 1,
    }
    clear_negative_cache()
    register_processor(SwatchProcessor())
    try:
        yield tmp_path / "derivatives"
    finally:
        unregister_processor("swatch")
        executor_module.reset_executor()
        clear_negative_cache()


def test_sources_are_routed_by_kind(swatches: Path) -> None:
    assert processor_for("a/orange.swatch").kind == "swatch"
    assert processor_for("a/photo.JPG").kind == "image"
    assert processor_for("a/unknown.bin").kind == "image"
    unregister_processor("swatch")
    assert processor_for("a/orange.swatch").kind == "image"


def test_only_processors_register() -> None:
    with pytest.raises(TypeError):
        register_processor(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        unregister_processor("image")


async def test_a_registered_processor_is_served_end_to_end(
    swatches: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from PIL import Image

    caplog.set_level(logging.INFO, logger="fileresponse.derivatives")
    url = derivative_url("orange.swatch", "32x16")
    client = AsyncClient()
    first = await client.get(url)
    body = b"".join([chunk async for chunk in first.streaming_content])
    assert first.status_code == 200, body
    assert first["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(body))
    assert image.size == (32, 16)
    assert image.convert("RGB").getpixel((0, 0)) == (255, 136, 0)
    made = [record.getMessage() for record in caplog.records if "generated" in record.getMessage()]
    assert len(made) == 1
    assert "swatch-1/default/" in made[0]
    assert "swatch (255, 136, 0)" in made[0], "the job ran in the registered processor"
    stored = await asyncio.to_thread(lambda: sorted(swatches.rglob("*.png")))
    assert [path.relative_to(swatches).parts[0] for path in stored] == ["swatch-1"]

    again = await client.get(url, headers={"If-None-Match": first["ETag"]})
    assert again.status_code == 304
    assert len([r for r in caplog.records if "generated" in r.getMessage()]) == 1


async def test_a_registered_processor_refuses_with_its_own_reasons(
    swatches: Path, settings: Any
) -> None:
    settings.DEBUG = True  # the body says why
    client = AsyncClient()
    too_big = await client.get(derivative_url("orange.swatch", "300x300"))
    not_a_colour = await client.get(derivative_url("nonsense.swatch", "8x8"))
    assert too_big.status_code == 400
    assert b"small box" in too_big.content
    assert not_a_colour.status_code == 422
    assert b"not a colour" in not_a_colour.content
