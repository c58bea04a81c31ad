"""The example's media library under a real server, as a browser uses it.

gunicorn with the library's worker runs ``example/`` on the embedded default
(files, SQLite, process pool) with the sample media of ``prepare_media``:
every page answers, each kind's detail page names its derivatives, the
admin's changelist shows thumbnails, and an upload posted through the form
(its CSRF token, multipart) is saved in the background: attached by a job of
the web process, or by a real Celery worker of ``example.celery:app`` with a
real Redis (``tests/queues.py``).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("PIL")
pytest.importorskip("imageio_ffmpeg")
pytest.importorskip("pypdfium2")
pytest.importorskip("uvicorn_worker")

from PIL import Image

from tests.example import EXAMPLE, REPO_ROOT, example_environ
from tests.queues import RedisServer, WorkerProcess, celery_available, wait_for
from tests.servers import free_port

pytestmark = [pytest.mark.live, pytest.mark.slow]

UPLOAD_NAME = "Übersicht 写真.png"


@dataclass
class Example:
    base_url: str
    env: dict[str, str]
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30)


def manage(env: dict[str, str], *args: str) -> None:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLE / "manage.py"), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


@contextlib.contextmanager
def example_server(data: Path, **overrides: str) -> Iterator[Example]:
    """The example migrated, with its samples, on gunicorn with the library's worker."""
    env = example_environ(data, **overrides)
    manage(env, "migrate", "--no-input", "--verbosity", "0")
    manage(env, "prepare_media")
    manage(env, "ensure_demo_admin")
    port = free_port()
    log = data / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "example.asgi:application"),
                *("-k", "fileresponse.workers.UvicornWorker", "-w", "1"),
                *("-b", f"127.0.0.1:{port}", "--graceful-timeout", "2", "--access-logfile", "-"),
            ],
            cwd=EXAMPLE,
            env={**env, "PYTHONPATH": str(REPO_ROOT)},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    example = Example(f"http://127.0.0.1:{port}", env, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(example.base_url + "/upload/", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log.read_text(errors="replace")[-3000:]) from None
                time.sleep(0.1)
        yield example
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    with example_server(tmp_path_factory.mktemp("example-library")) as running:
        yield running


def detail_pages(client: httpx.Client) -> dict[str, str]:
    """The first detail page of each kind in the gallery: kind -> HTML."""
    gallery = client.get("/")
    assert gallery.status_code == 200
    pages = {}
    for kind, pk in re.findall(r'class="card media-(\w+)" data-id="(\d+)"', gallery.text):
        if kind not in pages:
            page = client.get(f"/media/{pk}/")
            assert page.status_code == 200, page.text
            pages[kind] = page.text
    return pages


def urls(pattern: str, html: str) -> list[str]:
    return [url.replace("&amp;", "&") for url in re.findall(pattern, html)]


def test_the_gallery_has_responsive_thumbnails_never_upscaled(example: Example) -> None:
    with example.client() as client:
        gallery = client.get("/").text
        thumbs = re.findall(r'<img class="thumb"[^>]*>', gallery)
        assert len(thumbs) == 8  # the samples: 5 images, a video, a sound, a PDF
        for tag in thumbs:
            assert 'loading="lazy"' in tag
            assert 'sizes="' in tag
            assert re.search(r'srcset="[^"]+ \d+w', tag)
        small = next(tag for tag in thumbs if "small.jpg" in tag)
        widths = [int(width) for width in re.findall(r" (\d+)w", small)]
        assert max(widths) == 320, "the 320 px source is never upscaled"
        first = urls(r'src="([^"]+)"', thumbs[0])[0]
        made = client.get(first)
        again = client.get(first)
    assert made.status_code == 200
    assert made.headers["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(made.content)).size == (360, 270)
    assert again.content == made.content
    assert "v=" in first, "derivative URLs carry the item's version"


def test_each_kind_has_its_page_and_its_derivatives(example: Example) -> None:
    with example.client() as client:
        pages = detail_pages(client)
        assert set(pages) == {"image", "video", "audio", "pdf"}
        video = pages["video"]
        assert 'id="player"' in video
        assert "<video" in video
        poster = urls(r'poster="([^"]+)"', video)[0]
        transcode = urls(r'<source src="([^"]+)" type="video/mp4"', video)[0]
        audio = pages["audio"]
        assert "<audio" in audio
        waveform = urls(r'<img class="waveform"[^>]*src="([^"]+)"', audio.replace("\n", " "))[0]
        pdf_pages = urls(r'<figure class="pdf-page"><img src="([^"]+)"', pages["pdf"])
        assert len(pdf_pages) == 3
        answers = {
            "poster": client.get(poster),
            "waveform": client.get(waveform),
            "page": client.get(pdf_pages[1]),
            "transcode": client.get(transcode),
        }
        sound = client.get(urls(r'<audio id="player"[^>]*src="([^"]+)"', audio)[0])
        assert sound.status_code == 200
        assert sound.headers["Content-Type"] == "audio/mpeg"
        seek = client.get(transcode, headers={"Range": "bytes=1000-1999"})
    for name, answer in answers.items():
        assert answer.status_code == 200, (name, answer.text[:300])
    assert answers["poster"].headers["Content-Type"] == "image/webp"
    assert answers["waveform"].headers["Content-Type"] == "image/png"
    assert answers["transcode"].headers["Content-Type"] == "video/mp4"
    assert Image.open(io.BytesIO(answers["page"].content)).width == 600
    # Stored by its first request: the transcode is seekable.
    assert (seek.status_code, len(seek.content)) == (206, 1000)


def test_the_original_downloads_under_its_name(example: Example) -> None:
    with example.client() as client:
        pages = detail_pages(client)
        link = re.search(r'id="download"[^>]*href="([^"]+)"', pages["image"])
        assert link is not None
        images = re.findall(r'data-id="(\d+)"', client.get("/").text)
        answers = [client.get(f"/media/{pk}/download") for pk in images]
        files = client.get("/files/binary/random-10MiB.bin", headers={"Range": "bytes=0-99"})
    names = [answer.headers.get("Content-Disposition", "") for answer in answers]
    assert all(name.startswith("attachment; ") for name in names)
    expected = "filename*=UTF-8''Gr%C3%BC%C3%9Fe%20aus%20K%C3%B6ln%20%E6%97%A5%E6%9C%AC.png"
    assert any(expected in name for name in names), names
    assert all(answer.headers["X-Delivery"] in ("stream", "zero-copy") for answer in answers)
    assert (files.status_code, len(files.content)) == (206, 100)


def test_the_admin_lists_media_with_thumbnails(example: Example) -> None:
    with example.client() as client:
        login = client.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
        assert token is not None
        signed_in = client.post(
            "/admin/login/?next=/admin/gallery/media/",
            data={"username": "admin", "password": "admin", "csrfmiddlewaretoken": token[1]},
            follow_redirects=True,
        )
        changelist = client.get("/admin/gallery/media/")
    assert signed_in.status_code == 200
    assert changelist.status_code == 200
    thumbs = re.findall(r'<img class="admin-thumb" src="(/derivatives/[^"]+)"', changelist.text)
    assert len(thumbs) == 8


def upload(example: Example, content: bytes) -> dict[str, Any]:
    """The form posted as a browser posts it: its CSRF cookie and token, multipart."""
    with example.client() as client:
        form = client.get("/upload/")
        assert form.status_code == 200
        assert 'id="upload-form"' in form.text
        assert 'id="upload-progress"' in form.text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token is not None
        posted = client.post(
            "/upload/",
            data={"title": "", "csrfmiddlewaretoken": token[1]},
            files={"upload": (UPLOAD_NAME, content, "image/png")},
            headers={"Accept": "application/json", "Referer": example.base_url + "/upload/"},
        )
        assert posted.status_code == 202, posted.text
        item: dict[str, Any] = posted.json()
        assert item["state"] == "pending"
        state_url = item["url"].rstrip("/") + "/state"
        states = []

        def attached() -> bool:
            states.append(client.get(state_url).json())
            return bool(states[-1]["state"] == "done")

        wait_for(attached, 60, f"the upload to be attached ({example.log})")
        page = client.get(item["url"])
        gallery = client.get("/")
        download = client.get(item["url"] + "download")
    assert page.status_code == 200
    assert f'data-id="{item["id"]}"' in gallery.text
    assert download.content == content
    assert (
        "filename*=UTF-8''%C3%9Cbersicht%20%E5%86%99%E7%9C%9F.png"
        in (download.headers["Content-Disposition"])
    )
    return {"item": item, "page": page.text, "states": states}


def png(width: int = 800, height: int = 600) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (40, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def gallery_thumbnail(example: Example, pk: int) -> httpx.Response:
    """The gallery's thumbnail of item ``pk``, fetched as the browser fetches its ``src``."""
    with example.client() as client:
        gallery = client.get("/").text
        card = re.search(rf'data-id="{pk}">.*?<img class="thumb" src="([^"]+)"', gallery, re.S)
        assert card is not None, gallery
        return client.get(card[1].replace("&amp;", "&"))


def test_an_upload_is_saved_in_the_background(example: Example) -> None:
    result = upload(example, png())
    assert "Übersicht 写真" in result["page"]
    assert "attached library/" in example.log.read_text(errors="replace")
    # Made by the job with the upload: the gallery's thumbnail is a hit at once.
    thumb = gallery_thumbnail(example, result["item"]["id"])
    assert thumb.status_code == 200
    assert Image.open(io.BytesIO(thumb.content)).size == (360, 270)
    assert "hit" in thumb.headers.get("Cache-Status", "hit")


def test_an_upload_is_attached_by_a_celery_worker(
    redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    if not celery_available():
        pytest.skip("no celery: pip install 'fileresponse[celery]'")
    overrides = {"DERIVATIVES_EXECUTOR": "celery", "CELERY_BROKER_URL": redis_url}
    env = example_environ(tmp_path, **overrides)
    worker = WorkerProcess(
        "celery worker",
        [
            *(sys.executable, "-m", "celery", "-A", "example", "worker"),
            *("--pool", "solo", "--concurrency", "1", "--loglevel", "INFO"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        ],
        {
            **env,
            "DJANGO_SETTINGS_MODULE": "example.settings",
            "PYTHONPATH": f"{EXAMPLE}{os.pathsep}{REPO_ROOT}",
        },
        tmp_path / "celery.log",
        ready_marker=" ready.",
    )
    with example_server(tmp_path, **overrides) as running:
        worker.start()
        try:
            started = time.monotonic()
            result = upload(running, png(640, 480))
            attached_in = time.monotonic() - started
            made = gallery_thumbnail(running, result["item"]["id"])
        finally:
            worker.stop()
    assert made.status_code == 200
    log = worker.log()
    assert "fileresponse.run_job" in log, log[-3000:]
    assert "attached library/" in log, log[-3000:]
    assert result["item"]["state"] == "pending"
    # The job made the upload's derivatives in the worker (one slot: it waited for no task
    # queued behind itself), so the gallery's thumbnail is a hit at once.
    assert attached_in < 15, log[-3000:]
    assert "fileresponse.derivatives.make[" not in log, log[-3000:]
    assert "generated " in log, log[-3000:]
    assert made.headers["Cache-Status"] == "fileresponse; hit"
    assert Image.open(io.BytesIO(made.content)).size == (360, 270)
