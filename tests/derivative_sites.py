"""An in-process derivative site for a test module: its URLconf, media, derivative root."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fileresponse.derivatives import executor as executor_module
from fileresponse.derivatives.pipeline import clear_negative_cache


@contextmanager
def derivative_site(
    settings: Any, tmp_path: Path, urlconf: str, **overrides: Any
) -> Iterator[Path]:
    """Serve ``tmp_path/media``, derivatives in ``tmp_path/derivatives`` (yielded).

    The thread executor makes them unless ``overrides`` (``FILERESPONSE`` keys)
    say otherwise; the executor and the negative cache are reset after.
    """
    settings.ROOT_URLCONF = urlconf
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    settings.FILERESPONSE = {
        "DERIVATIVES_ROOT": str(tmp_path / "derivatives"),
        "DERIVATIVES_EXECUTOR": "thread",
        **overrides,
    }
    clear_negative_cache()
    try:
        yield tmp_path / "derivatives"
    finally:
        executor_module.reset_executor()
        clear_negative_cache()
