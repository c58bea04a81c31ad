"""Which kinds a site makes (``DERIVATIVES_KINDS``): E030/W030, and a clean ``501`` at request."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PIL")

from django.core.checks import CheckMessage, run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient
from django.urls import include, path

from fileresponse.conf import get_config, validate
from fileresponse.derivatives.exceptions import KindUnavailable
from fileresponse.derivatives.links import derivative_url
from fileresponse.derivatives.pipeline import _negative_cache
from fileresponse.derivatives.processors import get_processor
from tests import images
from tests.derivative_sites import derivative_site

urlpatterns = [path("derivatives/", include("fileresponse.derivatives.urls"))]


@pytest.fixture
def site(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """A photo, a video and a PDF to serve (never decoded here); yields the derivative root."""
    media = tmp_path / "media"
    (media / "files").mkdir(parents=True)
    (media / "files" / "photo.jpg").write_bytes(images.jpeg((120, 80)))
    (media / "files" / "film.mp4").write_bytes(b"not decoded: refused before any work")
    (media / "files" / "report.pdf").write_bytes(b"%PDF-1.4 not decoded either")
    with derivative_site(settings, tmp_path, __name__) as derivatives:
        yield derivatives


def configure(settings: Any, **values: Any) -> None:
    settings.FILERESPONSE = {**settings.FILERESPONSE, **values}


def stored_anything(root: Path) -> bool:
    return root.exists()


def kind_messages() -> list[CheckMessage]:
    return [message for message in run_checks() if (message.id or "").endswith("030")]


@pytest.fixture
def no_pdfium(monkeypatch: pytest.MonkeyPatch) -> None:
    """pypdfium2 not installed, as ``importlib.util.find_spec`` sees it."""
    monkeypatch.setitem(sys.modules, "pypdfium2", None)


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("video", "DERIVATIVES_KINDS must be tuple or list or None, not str"),
        ({"video"}, "DERIVATIVES_KINDS must be tuple or list or None, not set"),
        (
            ["video", "gif"],
            "DERIVATIVES_KINDS may hold 'image', 'pdf', 'video', 'audio', 'command'",
        ),
        ([1], "DERIVATIVES_KINDS may hold"),
        (["Video"], "DERIVATIVES_KINDS may hold"),
    ],
)
def test_bad_kinds_are_refused(value: object, problem: str) -> None:
    problems = validate({"DERIVATIVES_KINDS": value})
    assert len(problems) == 1
    assert problems[0].startswith(problem)


@pytest.mark.parametrize(
    ("value", "effective"),
    [
        (None, None),
        ([], ()),
        (["image", "video"], ("image", "video")),
        (
            ("image", "pdf", "video", "audio", "command"),
            ("image", "pdf", "video", "audio", "command"),
        ),
    ],
)
def test_good_kinds_are_taken(settings: Any, value: object, effective: object) -> None:
    assert validate({"DERIVATIVES_KINDS": value}) == []
    settings.FILERESPONSE = {"DERIVATIVES_KINDS": value}
    assert effective == get_config().DERIVATIVES_KINDS


def test_bad_kinds_fail_the_config(settings: Any) -> None:
    settings.FILERESPONSE = {"DERIVATIVES_KINDS": ["gif"]}
    with pytest.raises(ImproperlyConfigured, match="DERIVATIVES_KINDS may hold"):
        get_config()
    assert [
        message.id for message in run_checks() if (message.id or "").startswith("fileresponse.")
    ] == ["fileresponse.E002"]


# ---------------------------------------------------------------- checks


def test_a_listed_kind_without_its_extra_is_an_error(
    site: Path, settings: Any, no_pdfium: None
) -> None:
    configure(settings, DERIVATIVES_KINDS=["image", "pdf"])
    messages = kind_messages()
    assert [message.id for message in messages] == ["fileresponse.E030"]
    assert "pip install 'fileresponse[pdf]'" in messages[0].msg
    assert messages[0].hint is not None
    assert "DERIVATIVES_KINDS" in messages[0].hint


def test_a_listed_kind_without_ffmpeg_is_an_error(
    site: Path, settings: Any, tmp_path: Path
) -> None:
    (tmp_path / "ffmpeg").write_text("#!/bin/sh\n")  # not executable
    configure(settings, DERIVATIVES_KINDS=["video"], FFMPEG=str(tmp_path / "ffmpeg"))
    messages = kind_messages()
    assert [message.id for message in messages] == ["fileresponse.E030"]
    assert "video derivatives need ffmpeg" in messages[0].msg
    assert "is not an executable file" in messages[0].msg


def test_a_listed_kind_without_imageio_ffmpeg_names_its_extra(
    site: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    configure(settings, DERIVATIVES_KINDS=["audio", "video"])
    messages = sorted(message.msg for message in kind_messages())
    assert len(messages) == 2
    assert "audio derivatives need ffmpeg: pip install 'fileresponse[audio]'" in messages[0]
    assert "video derivatives need ffmpeg: pip install 'fileresponse[video]'" in messages[1]


def test_a_kind_left_out_is_no_error(site: Path, settings: Any, no_pdfium: None) -> None:
    configure(settings, DERIVATIVES_KINDS=["image"])
    assert kind_messages() == []


def test_a_missing_extra_under_auto_is_a_warning(
    site: Path, settings: Any, no_pdfium: None
) -> None:
    messages = kind_messages()
    assert [message.id for message in messages] == ["fileresponse.W030"]
    assert "pip install 'fileresponse[pdf]'" in messages[0].msg


# ---------------------------------------------------------------- requests


@pytest.mark.parametrize("spec", ["poster t=1s 320x", "mp4 360p"])  # in a worker, streamed
async def test_a_disabled_kind_is_a_501_before_any_work(
    site: Path,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    spec: str,
) -> None:
    def no_work(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the request did work")

    monkeypatch.setattr(get_processor("video"), "job", no_work)
    configure(settings, DERIVATIVES_KINDS=["image"])
    url = derivative_url("files/film.mp4", spec)
    with caplog.at_level(logging.INFO, logger="fileresponse"):
        response = await AsyncClient().get(url)
    assert response.status_code == 501
    assert response.content == b"501 Not Implemented\n"
    assert all(record.exc_info is None for record in caplog.records)  # no traceback
    ours = [record.getMessage() for record in caplog.records if record.name == "fileresponse"]
    assert len(ours) == 1
    assert "501 KindUnavailable" in ours[0]
    settings.DEBUG = True
    debug = await AsyncClient().get(url)
    assert debug.status_code == 501
    assert b"video derivatives are not enabled (DERIVATIVES_KINDS)" in debug.content
    assert b"Traceback" not in debug.content
    assert not stored_anything(site)


async def test_a_kind_without_its_library_is_a_501(
    site: Path, settings: Any, no_pdfium: None
) -> None:
    settings.DEBUG = True
    response = await AsyncClient().get(derivative_url("files/report.pdf", "page=1 200x"))
    assert response.status_code == 501
    assert b"KindUnavailable: pdf derivatives need pypdfium2" in response.content
    assert b"pip install 'fileresponse[pdf]'" in response.content
    assert not stored_anything(site)


async def test_a_refusal_is_not_remembered(site: Path, settings: Any) -> None:
    configure(settings, DERIVATIVES_KINDS=["pdf"])
    url = derivative_url("files/photo.jpg", "60x webp")
    assert (await AsyncClient().get(url)).status_code == 501
    assert _negative_cache._entries == {}
    configure(settings, DERIVATIVES_KINDS=["image"])
    response = await AsyncClient().get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"


def test_the_negative_cache_never_keeps_a_refusal() -> None:
    _negative_cache.remember("a/name", KindUnavailable("video derivatives are not enabled"), 30)
    assert _negative_cache._entries == {}


async def test_a_disabled_command_kind_is_a_501(site: Path, settings: Any) -> None:
    configure(settings, DERIVATIVES_KINDS=["image"])
    settings.DEBUG = True
    response = await AsyncClient().get(derivative_url("files/photo.jpg", "run=grayscale"))
    assert response.status_code == 501
    assert b"command derivatives are not enabled" in response.content
