"""The example project's gallery: thumbnails are derivatives, made on first request."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PIL")

from tests.example import EXAMPLE, REPO_ROOT, example_environ, run_in_example

pytestmark = pytest.mark.slow

# Render the gallery, then request its first thumbnail twice, through Django's test client.
SCRIPT = """
import json
import re
from pathlib import Path

import django

django.setup()
from django.conf import settings
from django.test import Client

client = Client()
page = client.get("/")
sources = [
    source.replace("&amp;", "&")
    for source in re.findall(r'<img class="thumb" src="([^"]+)"', page.content.decode())
]
derivatives = Path(settings.FILERESPONSE["DERIVATIVES_ROOT"])
made_while_rendering = sum(1 for path in derivatives.rglob("*") if path.is_file())
first = client.get(sources[0], HTTP_ACCEPT="image/webp,*/*")
body = b"".join(first.streaming_content)
again = client.get(sources[0], HTTP_ACCEPT="image/webp,*/*")
print(json.dumps({
    "status": page.status_code,
    "images": len(sources),
    "made_while_rendering": made_while_rendering,
    "thumbnail_status": first.status_code,
    "thumbnail_type": first["Content-Type"],
    "thumbnail_bytes": len(body),
    "same_again": b"".join(again.streaming_content) == body,
    "stored": sorted(path.name for path in derivatives.rglob("*.webp")),
}))
"""


def test_gallery_thumbnails_are_derivatives(tmp_path: Path) -> None:
    env = example_environ(tmp_path)
    for command in (["migrate", "--no-input"], ["prepare_media"]):
        prepared = subprocess.run(
            [sys.executable, str(EXAMPLE / "manage.py"), *command],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert prepared.returncode == 0, prepared.stderr
    result = run_in_example(SCRIPT, env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["status"] == 200
    assert report["images"] == 8  # the samples of prepare_media: every kind
    assert report["made_while_rendering"] == 0
    assert report["thumbnail_status"] == 200
    assert report["thumbnail_type"] == "image/webp"
    assert report["thumbnail_bytes"] > 0
    assert report["same_again"] is True
    assert len(report["stored"]) == 1
    assert "360x270_fill" in report["stored"][0]
    assert (tmp_path / "derivatives").is_dir()
