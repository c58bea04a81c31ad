"""The example project with ``STORAGE=minio``: ``/files/<path>`` serves the bucket.

The project runs as a user would run it (``manage.py check``, then gunicorn with
uvicorn workers from ``example/``), configured only by the environment variables
of settings.ini, against the suite's S3 server.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.s3server import S3Target, free_port
from tests.test_example_settings import CONFIG_KEYS

pytestmark = [pytest.mark.minio, pytest.mark.live, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTENT = bytes(range(256)) * 8192  # 2 MiB


def example_env(s3: S3Target, **overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in CONFIG_KEYS}
    env.update(
        {
            "STORAGE": "minio",
            "MINIO_ENDPOINT": s3.endpoint,
            "MINIO_ACCESS_KEY": s3.access_key,
            "MINIO_SECRET_KEY": s3.secret_key,
            "MINIO_BUCKET": s3.bucket,
            "MINIO_SECURE": "true" if s3.secure else "false",
            "DEBUG": "false",
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "example/manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def example_server(s3: S3Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    s3.client().put_object(s3.bucket, "example/data.bin", io.BytesIO(CONTENT), len(CONTENT))
    # A key that /files/ refuses (a backslash): the index must leave it out, not fail.
    s3.client().put_object(s3.bucket, "example/back\\slash.txt", io.BytesIO(b"x"), 1)
    port = free_port()
    log = tmp_path_factory.mktemp("example-minio") / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "--chdir", "example"),
                *("example.asgi:application", "-k", "uvicorn_worker.UvicornWorker"),
                *("-w", "1", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "2"),
            ],
            cwd=REPO_ROOT,
            env=example_env(s3),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base_url + "/files/example/data.bin", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log.read_text(errors="replace")[-3000:]) from None
                time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_check_passes_and_names_refused_credentials(s3: S3Target) -> None:
    assert manage(example_env(s3), "check").returncode == 0

    refused = manage(example_env(s3, MINIO_SECRET_KEY="not-the-secret-key"), "check")
    assert refused.returncode != 0
    assert "fileresponse.E011" in refused.stderr
    assert "refused access key" in refused.stderr


def test_files_url_serves_the_bucket(example_server: str) -> None:
    with httpx.Client(base_url=example_server, timeout=30) as client:
        whole = client.get("/files/example/data.bin")
        part = client.get("/files/example/data.bin", headers={"Range": "bytes=100-199"})
        not_modified = client.get(
            "/files/example/data.bin", headers={"If-None-Match": whole.headers["ETag"]}
        )
        missing = client.get("/files/example/absent.bin")
        escape = client.get("/files/%2e%2e/example/data.bin")
        index = client.get("/storage/")

    assert index.status_code == 200
    assert "MinioStorage" in index.text
    assert 'href="/files/example/data.bin"' in index.text
    assert "slash.txt" not in index.text
    assert whole.status_code == 200
    assert whole.content == CONTENT
    assert (part.status_code, part.content) == (206, CONTENT[100:200])
    assert not_modified.status_code == 304
    assert missing.status_code == 404
    assert escape.status_code == 404
