"""Queued storage and background uploads across real processes: a server, workers, Redis, S3.

The web process is a real uvicorn (tests/servers.py) running tests/project with
a QueuedStorage ``queued`` (local disk -> the suite's S3 server); transfers run
in a real Celery worker or Django Tasks ``db_worker`` (tests/queues.py), which
is killed with SIGKILL mid-transfer and restarted. Web, workers, the command
and the test share one SQLite file; the test reads the rows with sqlite3.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fileresponse.derivatives.signing import signed_path
from fileresponse.derivatives.spec import parse_spec
from tests.queues import WorkerProcess, tasks_database, wait_for
from tests.s3server import S3Target
from tests.servers import REPO_ROOT, LiveServer, ServerKind, _uvicorn, build_media_tree

pytestmark = [pytest.mark.live, pytest.mark.minio]

SETTINGS = "tests.derivatives_site.settings"


def _migrated(directory: Path, *, tasks: bool) -> Path:
    if tasks:
        return tasks_database(directory, SETTINGS)
    database = directory / "web.sqlite3"
    _manage({"FILERESPONSE_TEST_DATABASE": str(database)}, "migrate", "--no-input", "-v", "0")
    return database


def _manage(environ: dict[str, str], *arguments: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "django", *arguments],
        cwd=REPO_ROOT,
        env={
            **_base_environ(),
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            **environ,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def _base_environ() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}


def _rows(database: Path, table: str) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(database, timeout=10)) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(f"SELECT * FROM {table}")]


class Site:
    """The environment of web server, workers and command for one test."""

    def __init__(
        self,
        tmp_path: Path,
        s3: S3Target,
        engine: str,
        *,
        settings: dict[str, Any] | None = None,
        queued: dict[str, Any] | None = None,
        **extra: str,
    ) -> None:
        self.tmp_path = tmp_path
        self.database = _migrated(tmp_path, tasks=engine == "tasks")
        self.local = tmp_path / "queued-local"
        self.derivatives = tmp_path / "derivatives"
        prefix = f"queued-live-{random.Random().getrandbits(32):08x}"
        self.queued_options = {
            "local": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(self.local)},
            },
            "remote": {
                "BACKEND": "fileresponse.storage.MinioStorage",
                "OPTIONS": s3.storage_options(prefix=prefix, connect_timeout=2.0),
            },
            "lease": 1.0,
            "retry_delay": 0.2,
            # About 2 s for the 8 MiB of the kill tests: time to kill the worker mid-copy.
            "rate_limit": 4 * 1024 * 1024,
            **(queued or {}),
        }
        self.prefix = prefix
        self.media = build_media_tree(tmp_path / "tree")
        self.environ = {
            # Uploads are staged under MEDIA_ROOT/.staging: web and workers share it.
            "FILERESPONSE_TEST_MEDIA_ROOT": str(self.media.root),
            **s3.environ(),
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "FILERESPONSE_TEST_DATABASE": str(self.database),
            "FILERESPONSE_TEST_QUEUED": json.dumps(self.queued_options),
            "FILERESPONSE_TEST_DERIVATIVES_ROOT": str(self.derivatives),
            "FILERESPONSE_TEST_SETTINGS": json.dumps(
                {
                    "TRANSFERS_ENGINE": engine,
                    "DERIVATIVES_EXECUTOR": "thread",
                    "DERIVATIVES_CELERY_APP": "tests.project.celery.app",
                    **(settings or {}),
                }
            ),
            **({"FILERESPONSE_TEST_TASKS": "db"} if engine == "tasks" else {}),
            **extra,
        }

    def server(self) -> LiveServer:
        kind = ServerKind(
            "uvicorn-queued", "patched", _uvicorn("patched"), False, tuple(self.environ.items())
        )
        server = LiveServer(kind, self.media, self.tmp_path / "server.log")
        server.start()
        return server

    def transfers(self) -> list[dict[str, Any]]:
        return _rows(self.database, "fileresponse_transfer")

    def command(self, *arguments: str) -> str:
        return _manage(self.environ, "fileresponse_transfers", *arguments)


@pytest.fixture
def started() -> Iterator[Callable[[LiveServer], LiveServer]]:
    servers: list[LiveServer] = []

    def keep(server: LiveServer) -> LiveServer:
        servers.append(server)
        return server

    yield keep
    for server in servers:
        server.stop()


@pytest.fixture(params=["celery", "tasks"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_nothing_is_lost_when_the_worker_is_killed_mid_transfer(
    engine: str,
    tmp_path: Path,
    s3: S3Target,
    request: pytest.FixtureRequest,
    started: Callable[[LiveServer], LiveServer],
) -> None:
    extra = {}
    if engine == "celery":
        extra["FILERESPONSE_TEST_CELERY_BROKER"] = request.getfixturevalue("redis_url")
        factory = request.getfixturevalue("celery_worker_factory")
    else:
        factory = request.getfixturevalue("tasks_worker_factory")
    site = Site(tmp_path, s3, engine, **extra)
    server = started(site.server())
    worker = factory(site.environ)
    worker.start()
    content = random.Random(41).randbytes(8 * 1024 * 1024)
    reads: list[int] = []

    with httpx.Client(base_url=server.base_url, timeout=30) as client:

        def read_through_the_server() -> None:
            response = client.get(f"/storage/queued/{name}")
            assert response.status_code == 200
            assert hashlib.sha256(response.content).digest() == digest
            reads.append(len(response.content))

        digest = hashlib.sha256(content).digest()
        saved = client.post("/queued/big.bin", files={"file": ("big.bin", content)})
        assert saved.status_code == 201, saved.text
        name = saved.json()["name"]
        read_through_the_server()

        def copying() -> bool:
            rows = site.transfers()
            return bool(rows and rows[0]["claimed_until"])

        wait_for(copying, 20, "the worker to claim the transfer")
        time.sleep(0.5)
        worker.kill()
        killed = site.transfers()[0]
        read_through_the_server()
        assert killed["state"] == "pending"
        assert (site.local / name).exists()

        worker.start()
        time.sleep(1.2)  # the dead worker's lease expires
        listing = site.command("--retry")
        deadline = time.monotonic() + 30
        while site.transfers()[0]["state"] != "done":
            if time.monotonic() > deadline:
                pytest.fail(f"no transfer after the restart:\n{worker.log_tail()}")
            read_through_the_server()
        read_through_the_server()

    done = site.transfers()[0]
    assert done["state"] == "done", done["error"]
    assert done["attempts"] >= 1
    assert done["checksum"] == hashlib.sha256(content).hexdigest()
    assert f"queued:{name}" in listing
    assert "re-queued 1" in listing
    assert not (site.local / name).exists()
    stored = s3.client().get_object(s3.bucket, f"{site.prefix}/{name}")
    try:
        assert hashlib.sha256(stored.read()).hexdigest() == done["checksum"]
    finally:
        stored.close()
        stored.release_conn()
    assert worker.starts == 2
    assert set(reads) == {len(content)}


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 90)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("where", ["local", "celery"])
def test_an_upload_posted_to_a_form_is_saved_in_the_background(
    where: str,
    tmp_path: Path,
    s3: S3Target,
    request: pytest.FixtureRequest,
    started: Callable[[LiveServer], LiveServer],
) -> None:
    pytest.importorskip("PIL")
    extra = {}
    worker = None
    if where == "celery":
        extra["FILERESPONSE_TEST_CELERY_BROKER"] = request.getfixturevalue("redis_url")
    site = Site(tmp_path, s3, where, **extra)
    server = started(site.server())
    if where == "celery":
        worker = request.getfixturevalue("celery_worker_factory")(site.environ)
        worker.start()

    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        posted = client.post(
            "/uploads/",
            data={"title": "a red box", "spec": "32x32 fill webp"},
            files={"image": ("box.png", _png(), "image/png")},
        )
        assert posted.status_code == 202, posted.text
        answer = posted.json()

        def state() -> dict[str, Any]:
            return dict(client.get(f"/uploads/{answer['id']}").json())

        wait_for(lambda: state()["state"] == "done", 30, "the upload to be attached")
        final = state()

    assert answer["state"] == "pending"
    assert answer["staged_name"].endswith("/box.png")
    assert final["image"] == "photos/box.png"
    assert final["staged_name"] is None
    assert final["signalled"] is True
    assert final["callback_pid"] == (worker.pid if worker is not None else server.pid)
    assert (server.media_root / "photos" / "box.png").read_bytes() == _png()
    assert not (server.media_root / ".staging" / answer["staged_name"]).exists()
    assert list(site.derivatives.rglob("*.webp")), "no derivative was made"


def _png_noise(width: int, height: int) -> bytes:
    """A PNG that does not compress: its transfer takes a while under a rate limit."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), random.Random(5).randbytes(width * height * 3)).save(
        buffer, "PNG"
    )
    return buffer.getvalue()


def _on_celery(redis_url: str, **settings: Any) -> dict[str, Any]:
    """Derivatives made by the Celery worker (``DERIVATIVES_EXECUTOR``), as transfers are."""
    return {
        "DERIVATIVES_EXECUTOR": "celery",
        "DERIVATIVES_REDIS_URL": redis_url,
        "DERIVATIVES_TIMEOUT": 30,
        **settings,
    }


def test_an_upload_on_a_celery_worker_of_one_slot_makes_its_derivatives_there(
    tmp_path: Path,
    s3: S3Target,
    redis_url: str,
    celery_worker_factory: Callable[..., WorkerProcess],
    started: Callable[[LiveServer], LiveServer],
) -> None:
    pytest.importorskip("PIL")
    site = Site(
        tmp_path,
        s3,
        "celery",
        settings=_on_celery(redis_url),
        FILERESPONSE_TEST_CELERY_BROKER=redis_url,
    )
    server = started(site.server())
    worker = celery_worker_factory(site.environ)
    worker.start()

    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        posted = client.post(
            "/uploads/",
            data={"title": "a red box", "spec": ["32x32 fill webp", "48x48 fit png"]},
            files={"image": ("box.png", _png(), "image/png")},
        )
        assert posted.status_code == 202, posted.text
        answer = posted.json()
        began = time.monotonic()

        def state() -> dict[str, Any]:
            return dict(client.get(f"/uploads/{answer['id']}").json())

        # Not DERIVATIVES_TIMEOUT (30 s): the job waits for no task queued behind itself.
        wait_for(lambda: state()["state"] != "pending", 10, "the upload to be attached")
        took = time.monotonic() - began
        final = state()

    assert final["state"] == "done", (final["error"], worker.log_tail())
    assert final["image"] == "photos/box.png"
    assert final["callback_pid"] == worker.pid
    assert took < 10
    assert len(list(site.derivatives.rglob("*.webp"))) == 1
    assert len(list(site.derivatives.rglob("*.png"))) == 1
    # Made in the worker's process by the job: no derivative task was queued.
    assert "fileresponse.derivatives.make[" not in worker.log()
    assert worker.log().count("generated ") == 2, worker.log_tail()


def test_a_derivative_of_a_file_in_transfer_is_served_on_its_first_request(
    tmp_path: Path,
    s3: S3Target,
    redis_url: str,
    celery_worker_factory: Callable[..., WorkerProcess],
    started: Callable[[LiveServer], LiveServer],
) -> None:
    pytest.importorskip("PIL")
    content = _png_noise(240, 240)
    site = Site(
        tmp_path,
        s3,
        "celery",
        settings=_on_celery(redis_url, DERIVATIVES_SOURCE_STORAGES=["default", "queued"]),
        # About 2 s of copying.
        queued={"rate_limit": len(content) // 2},
        FILERESPONSE_TEST_CELERY_BROKER=redis_url,
    )
    server = started(site.server())
    worker = celery_worker_factory(site.environ)
    worker.start()

    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        saved = client.post("/queued/noise.png", files={"file": ("noise.png", content)})
        assert saved.status_code == 201, saved.text
        name = saved.json()["name"]
        url = "/derivatives/" + signed_path(name, parse_spec("64x64 fill png"), storage="queued")
        wait_for(lambda: bool(site.transfers()[0]["claimed_until"]), 20, "the transfer to start")
        during = site.transfers()[0]
        # Stat'ed here from the local copy; the task queues behind the transfer (one slot),
        # whose worker then stats the remote copy: the same version, the same name.
        first = client.get(url)
        after = site.transfers()[0]
        second = client.get(url)

    assert during["state"] == "pending"
    assert after["state"] == "done", after["error"]
    assert first.status_code == 200, (first.text[:300], worker.log_tail())
    assert first.headers["Cache-Status"].startswith("fileresponse; fwd=miss")
    assert second.status_code == 200
    assert second.headers["Cache-Status"] == "fileresponse; hit"
    assert second.content == first.content
    assert "SourceChanged" not in worker.log()
