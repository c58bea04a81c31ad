"""``fileresponse_warm`` and ``fileresponse_purge``."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PIL")

from django.core.management import call_command

from fileresponse.derivatives import executor as executor_module
from fileresponse.derivatives.pipeline import clear_negative_cache
from tests import images


@pytest.fixture
def site(settings: Any, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """``(media root, derivative root)`` with three photos and a text file."""
    media = tmp_path / "media"
    (media / "photos" / "2024").mkdir(parents=True)
    (media / "photos" / "a.jpg").write_bytes(images.jpeg((800, 600)))
    (media / "photos" / "b.png").write_bytes(images.png_with_alpha((300, 200)))
    (media / "photos" / "2024" / "c.jpg").write_bytes(images.jpeg((640, 480)))
    (media / "notes.txt").write_text("not an image\n")
    derivatives = tmp_path / "derivatives"
    settings.MEDIA_ROOT = str(media)
    settings.STORAGES = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    settings.FILERESPONSE = {
        "DERIVATIVES_ROOT": str(derivatives),
        "DERIVATIVES_EXECUTOR": "thread",
        "DERIVATIVES_WORKERS": 2,
    }
    clear_negative_cache()
    yield media, derivatives
    executor_module.reset_executor()


def derivative_files(root: Path, suffix: str | None = None) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and ".locks" not in path.parts
        and path.name != "source.json"
        and (suffix is None or path.suffix == suffix)
    )


def warm(*arguments: str) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("fileresponse_warm", *arguments, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def purge(*arguments: str) -> str:
    stdout = io.StringIO()
    call_command("fileresponse_purge", *arguments, stdout=stdout, stderr=io.StringIO())
    return stdout.getvalue()


def test_warm_globs_and_specs(site: tuple[Path, Path]) -> None:
    _, derivatives = site
    out, err = warm("photos/*", "--spec", "100x100 fill", "--spec", "64x64 auto")
    # 3 sources x (1 format + 3 auto formats: avif, webp, and jpeg or png)
    assert "12 generated, 0 already there, 0 failed (3 source(s) x 2 spec(s))" in out
    assert "[##############################] 12/12" in err, "a progress bar"
    files = derivative_files(derivatives)
    assert len(files) == 12
    assert {path.suffix for path in files} == {".jpg", ".png", ".avif", ".webp"}
    for path in files:
        assert images.decode(path.read_bytes()).size[0] <= 100

    out, _ = warm("photos/*", "--spec", "100x100 fill", "--spec", "64x64 auto", "--no-progress")
    assert "0 generated, 12 already there" in out


def test_warm_a_name_and_a_failure(site: tuple[Path, Path]) -> None:
    with pytest.raises(SystemExit) as exited:
        warm("photos/a.jpg", "notes.txt", "--spec", "50x50", "--no-progress")
    assert exited.value.code == 1


def test_warm_refuses_bad_arguments(site: tuple[Path, Path]) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="bad spec"):
        warm("photos/a.jpg", "--spec", "sideways")
    with pytest.raises(CommandError, match="no source matches"):
        warm("nothing/*.jpg", "--spec", "50x50")


def test_warm_leaves_the_derivative_root_out(site: tuple[Path, Path], settings: Any) -> None:
    media, _ = site
    settings.FILERESPONSE = {**settings.FILERESPONSE, "DERIVATIVES_ROOT": None}
    out, _ = warm("*.jpg", "--spec", "40x40", "--no-progress")
    assert "2 generated" in out
    out, _ = warm("*.jpg", "--spec", "40x40", "--no-progress")
    assert "0 generated, 2 already there" in out, "derivatives are not sources"
    assert derivative_files(media / "derivatives")


def test_purge(site: tuple[Path, Path]) -> None:
    media, derivatives = site
    warm("photos/*", "--spec", "100x100", "--no-progress")
    assert len(derivative_files(derivatives)) == 3
    a_derivative = derivative_files(derivatives, ".jpg")[0]
    # An old engine's directory, a stranger's directory, a stale temporary file.
    (derivatives / "pillow-0" / "x").mkdir(parents=True)
    (derivatives / "pillow-0" / "x" / "old.jpg").write_bytes(b"old")
    (derivatives / "keep-me").mkdir()
    (derivatives / "keep-me" / "file.txt").write_text("not ours")
    temporary = a_derivative.with_name(".a.jpg.123.tmp")
    temporary.write_bytes(b"partial")
    old = time.time() - 7200
    os.utime(temporary, (old, old))

    assert "would remove 1 derivative file(s): 0 source(s) gone, 0 changed, 3 kept" in purge(
        "--dry-run"
    )
    assert (derivatives / "pillow-0" / "x" / "old.jpg").exists()

    (media / "photos" / "b.png").unlink()
    changed = media / "photos" / "a.jpg"
    changed.write_bytes(images.jpeg((500, 500)))
    os.utime(changed, (time.time() + 10, time.time() + 10))
    out = purge("-v", "2")
    assert "gone default:photos/b.png" in out
    assert "changed default:photos/a.jpg" in out
    assert "1 source(s) gone, 1 changed, 1 kept; 1 temporary file(s)" in out
    assert not (derivatives / "pillow-0").exists()
    assert (derivatives / "keep-me" / "file.txt").exists()
    assert not temporary.exists()
    remaining = derivative_files(derivatives, ".jpg")
    assert len(remaining) == 1  # c.jpg's; a.jpg's old version is gone
    assert "0 derivative file(s)" in purge()
