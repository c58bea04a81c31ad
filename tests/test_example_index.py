"""The example's index lists what ``/files/`` can serve, and skips the rest with a log line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.example import example_environ, run_in_example

SCRIPT = """
import json
import django

django.setup()
from django.test import Client

page = Client().get("/storage/")
print(json.dumps({"status": page.status_code, "body": page.content.decode()}))
"""


def test_index_skips_loops_and_broken_links(tmp_path: Path) -> None:
    media = tmp_path / "media"
    (media / "docs").mkdir(parents=True)
    (media / "docs" / "readme.txt").write_text("hello")
    (media / "self-loop").symlink_to("self-loop")
    (media / "docs" / "up").symlink_to("..", target_is_directory=True)
    (media / "broken.txt").symlink_to("nothing-here.txt")
    result = run_in_example(SCRIPT, example_environ(tmp_path))
    assert result.returncode == 0, result.stderr
    page = json.loads(result.stdout.strip().splitlines()[-1])
    assert page["status"] == 200
    assert 'href="/files/docs/readme.txt"' in page["body"]
    assert "docs/up/" not in page["body"]  # not listed again through the link
    assert "self-loop" not in page["body"]
    assert "broken.txt" not in page["body"]
    assert "skipped 'self-loop'" in result.stderr
    assert "skipped 'broken.txt'" in result.stderr
    assert "skipped 'docs/up'" in result.stderr
