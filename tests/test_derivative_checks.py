"""System checks of the derivative settings (``fileresponse.E020`` to ``E023``)."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from django.core.checks import CheckMessage, run_checks
from django.urls import include, path

urlpatterns = [path("derivatives/", include("fileresponse.derivatives.urls"))]

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "thumbnails": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
}


class GoodExecutor:
    """Enough of the JobExecutor protocol for the check (it is not built)."""

    async def run(self, job: object) -> object:
        raise NotImplementedError

    def shutdown(self) -> None:
        pass


NOT_AN_EXECUTOR = 42


def derivative_messages() -> list[CheckMessage]:
    return [message for message in run_checks() if message.id.startswith("fileresponse.E02")]


def ids(messages: list[CheckMessage]) -> list[str]:
    return [message.id for message in messages]


@pytest.fixture
def configure(settings: Any) -> Any:
    """``configure(**FILERESPONSE)``: two storages, no derivative URLs unless asked."""
    settings.STORAGES = STORAGES

    def configure(**values: Any) -> None:
        settings.FILERESPONSE = values

    return configure


def test_defaults_pass(configure: Any) -> None:
    configure()
    assert derivative_messages() == []


def test_a_valid_configuration_passes(configure: Any) -> None:
    configure(
        DERIVATIVES_SOURCE_STORAGES=["default", "thumbnails"],
        DERIVATIVES_STORAGE="thumbnails",
        DERIVATIVES_ENGINE="pillow",
        DERIVATIVES_EXECUTOR=f"{__name__}.GoodExecutor",
    )
    assert derivative_messages() == []


def test_e020_unknown_source_storage(configure: Any) -> None:
    configure(DERIVATIVES_SOURCE_STORAGES=["default", "photos", "videos"])
    messages = derivative_messages()
    assert ids(messages) == ["fileresponse.E020", "fileresponse.E020"]
    assert "'photos'" in messages[0].msg
    assert "'videos'" in messages[1].msg
    assert messages[0].hint == "Known aliases: default, thumbnails."


def test_e021_unknown_derivative_storage(configure: Any) -> None:
    configure(DERIVATIVES_STORAGE="minio")
    messages = derivative_messages()
    assert ids(messages) == ["fileresponse.E021"]
    assert "DERIVATIVES_STORAGE 'minio' is not in settings.STORAGES" in messages[0].msg


def test_e022_vips_engine_without_pyvips(configure: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyvips", None)  # import pyvips now fails
    configure(DERIVATIVES_ENGINE="vips")
    messages = derivative_messages()
    assert ids(messages) == ["fileresponse.E022"]
    assert "pip install 'fileresponse[vips]'" in messages[0].msg


def test_e022_pillow_engine_without_pillow(configure: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    configure(DERIVATIVES_ROOT="/tmp/derivatives")  # derivatives in use, the default engine
    messages = derivative_messages()
    assert ids(messages) == ["fileresponse.E022"]
    assert "needs PIL: pip install 'fileresponse[images]'" in messages[0].msg


def test_e022_only_when_derivatives_are_in_use(
    configure: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """File serving alone needs no Pillow; derivative URLs in the URLconf do."""
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    configure(CHUNK_SIZE=65536)
    settings.ROOT_URLCONF = "tests.project.urls"
    assert derivative_messages() == []
    settings.ROOT_URLCONF = __name__
    assert ids(derivative_messages()) == ["fileresponse.E022"]


@pytest.mark.parametrize(
    ("executor", "problem"),
    [
        (
            "processes",
            "is neither 'process' nor 'thread' nor 'celery' nor 'tasks'"
            " nor an importable dotted path",
        ),
        ("no.such.module.Executor", "nor an importable dotted path"),
        (f"{__name__}.NoSuchExecutor", "nor an importable dotted path"),
        (f"{__name__}.NOT_AN_EXECUTOR", "is not a class with run(job) and shutdown()"),
    ],
)
def test_e023_bad_executor(configure: Any, executor: str, problem: str) -> None:
    configure(DERIVATIVES_EXECUTOR=executor)
    messages = derivative_messages()
    assert ids(messages) == ["fileresponse.E023"]
    assert problem in messages[0].msg


@pytest.mark.parametrize("executor", ["process", "thread", f"{__name__}.GoodExecutor"])
def test_known_executors_pass(configure: Any, executor: str) -> None:
    configure(DERIVATIVES_EXECUTOR=executor)
    assert derivative_messages() == []


def test_invalid_settings_are_reported_once(configure: Any) -> None:
    """A bad value is E002 (the settings check); these checks stay silent meanwhile."""
    configure(DERIVATIVES_ENGINE="imagemagick", DERIVATIVES_STORAGE="minio")
    messages = [message for message in run_checks() if message.id.startswith("fileresponse.")]
    assert ids(messages) == ["fileresponse.E002"]
    assert "DERIVATIVES_ENGINE must be one of 'pillow', 'vips', not 'imagemagick'" in (
        messages[0].msg
    )
