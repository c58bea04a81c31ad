"""Specs of one kind, sources of another: command specs routed, a mismatch refused (400)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PIL")

from django.test import AsyncClient
from django.urls import include, path

from fileresponse.conf import get_config
from fileresponse.derivatives.exceptions import SpecMismatch
from fileresponse.derivatives.links import derivative_url
from fileresponse.derivatives.pipeline import clear_negative_cache
from fileresponse.derivatives.processors import (
    get_processor,
    processor_for,
    register_processor,
    unregister_processor,
)
from fileresponse.derivatives.processors.imaging import ImageProcessor
from fileresponse.derivatives.spec import parse_spec
from tests import images
from tests.derivative_sites import derivative_site

urlpatterns = [path("derivatives/", include("fileresponse.derivatives.urls"))]

#: Specs of every kind but image, and the kind the refusal names.
OTHER_KINDS = [
    ("page=2 400x", "pdf"),
    ("page=1", "pdf"),
    ("poster t=2s 320x180", "video"),
    ("poster t=50% jpeg", "video"),
    ("mp4 360p crf=23", "video"),
    ("mp3 128k", "audio"),
    ("waveform 800x120", "audio"),
    ("peaks 800 json", "audio"),
]


@pytest.fixture
def configured(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """A photo to serve; yields the derivative root."""
    media = tmp_path / "media"
    (media / "photos").mkdir(parents=True)
    (media / "photos" / "landscape.jpg").write_bytes(images.jpeg((120, 80)))
    with derivative_site(settings, tmp_path, __name__) as derivatives:
        yield derivatives


def stored_files(root: Path) -> list[Path]:
    """Derivatives and manifests (not lock files)."""
    if not root.exists():
        return []
    return sorted(path for path in root.rglob("*") if path.is_file() and ".locks" not in path.parts)


@pytest.fixture
def without_command_processor() -> Iterator[None]:
    command = get_processor("command")
    unregister_processor("command")
    try:
        yield
    finally:
        register_processor(command)


@pytest.mark.parametrize(("spec", "kind"), OTHER_KINDS)
async def test_an_image_source_refuses_specs_of_other_kinds(
    configured: Path, settings: Any, spec: str, kind: str
) -> None:
    url = derivative_url("photos/landscape.jpg", spec)
    response = await AsyncClient().get(url)
    assert response.status_code == 400
    assert response.content == b"400 Bad Request\n"
    settings.DEBUG = True
    clear_negative_cache()
    debug = await AsyncClient().get(url)
    assert debug.status_code == 400
    assert f"an image source takes image specs, not {kind}".encode() in debug.content
    assert stored_files(configured) == []


async def test_an_image_spec_is_still_served(configured: Path) -> None:
    response = await AsyncClient().get(derivative_url("photos/landscape.jpg", "60x webp"))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"


@pytest.mark.parametrize(("spec", "kind"), OTHER_KINDS)
def test_the_image_check_names_both_kinds_before_the_limits(
    configured: Path, spec: str, kind: str
) -> None:
    parsed = parse_spec(spec).scaled(1000)  # over DERIVATIVES_MAX_WIDTH too, if it has a box
    with pytest.raises(SpecMismatch, match=f"image source takes image specs, not {kind}") as raised:
        ImageProcessor().check(parsed, get_config())
    assert raised.value.status_code == 400


def test_command_specs_go_to_the_command_processor_whatever_the_source() -> None:
    command = parse_spec("run=grayscale 300x")
    for name in ("a/photo.jpg", "a/film.mp4", "a/doc.pdf", "a/unknown.bin"):
        assert processor_for(name, command).kind == "command"
    assert processor_for("a/photo.jpg", parse_spec("300x")).kind == "image"
    assert processor_for("a/photo.jpg").kind == "image"


def test_no_command_processor_is_a_mismatch(without_command_processor: None) -> None:
    with pytest.raises(SpecMismatch, match="no command processor") as raised:
        processor_for("a/photo.jpg", parse_spec("run=grayscale"))
    assert raised.value.status_code == 400
    assert processor_for("a/photo.jpg", parse_spec("300x")).kind == "image"


async def test_no_command_processor_is_a_400(
    configured: Path, settings: Any, without_command_processor: None
) -> None:
    settings.DEBUG = True
    response = await AsyncClient().get(derivative_url("photos/landscape.jpg", "run=grayscale"))
    assert response.status_code == 400
    assert b"no command processor" in response.content
