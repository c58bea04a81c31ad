"""The example project run as a user runs it: a subprocess, configured by its environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "example"


def example_environ(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The example on its embedded default (files, SQLite) with its data under ``tmp_path``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DJANGO_SETTINGS_MODULE", "FILERESPONSE_SETTINGS_FILE")
    }
    env.update(
        MEDIA_ROOT=str(tmp_path / "media"),
        DATABASE=str(tmp_path / "db.sqlite3"),
        STORAGE="filesystem",
    )
    env.update(overrides)
    return env


def run_in_example(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` with the example's settings, for Django's test client
    (``django.setup()`` is the code's)."""
    env = {
        "ALLOWED_HOSTS": "testserver",
        **env,
        "DJANGO_SETTINGS_MODULE": "example.settings",
        "PYTHONPATH": f"{EXAMPLE}{os.pathsep}{REPO_ROOT}",
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
