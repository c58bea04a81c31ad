"""The example project reads settings.ini, lets the environment win, and fails clearly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
MANAGE = REPO_ROOT / "example" / "manage.py"

# Keys of settings.ini; the caller's environment must not leak them into the subprocess.
CONFIG_KEYS = (
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "MEDIA_ROOT",
    "STORAGE",
    "MINIO_ENDPOINT",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
    "MINIO_BUCKET",
    "MINIO_SECURE",
    "DATABASE",
    "CACHE_CONTROL",
    "CHUNK_SIZE",
    "DERIVATIVES_EXECUTOR",
    "CELERY_BROKER_URL",
    "BACKGROUND_UPLOADS",
    "FILERESPONSE_SETTINGS_FILE",
    "DJANGO_SETTINGS_MODULE",
)

pytestmark = pytest.mark.slow


def manage(*args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in CONFIG_KEYS}
    env.update(overrides)
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def setting(name: str, **overrides: str) -> str:
    """The repr of one setting as the example project sees it."""
    code = f"from django.conf import settings; print(repr(settings.{name}))"
    result = manage("shell", "--verbosity", "0", "--command", code, **overrides)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_check_passes_with_the_committed_settings_ini() -> None:
    result = manage("check")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_values_come_from_settings_ini() -> None:
    result = manage("diffsettings")
    assert result.returncode == 0, result.stderr
    media_root = (REPO_ROOT / "example" / "media").resolve()
    assert f"MEDIA_ROOT = {media_root!r}" in result.stdout
    assert "SECRET_KEY = 'dev-insecure-fileresponse-example-key'" in result.stdout
    assert "DEBUG = True" in result.stdout
    assert "'CACHE_CONTROL': 'max-age=3600'" in result.stdout


def test_environment_variables_override_the_file(tmp_path: Path) -> None:
    overrides = {
        "DEBUG": "false",
        "ALLOWED_HOSTS": "files.example.test, other.example.test",
        "MEDIA_ROOT": str(tmp_path),
        "CACHE_CONTROL": "",
        "CHUNK_SIZE": "65536",
    }
    assert setting("DEBUG", **overrides) == "False"
    assert setting("ALLOWED_HOSTS", **overrides) == "['files.example.test', 'other.example.test']"
    assert setting("MEDIA_ROOT", **overrides) == repr(tmp_path.resolve())
    derivatives = str(tmp_path.resolve().parent / "derivatives")
    assert setting("FILERESPONSE", **overrides) == repr(
        {
            "CHUNK_SIZE": 65536,
            "CACHE_CONTROL": None,
            "DERIVATIVES_ROOT": derivatives,
            "DERIVATIVES_MAX_SOURCE_BYTES": 200 * 1024 * 1024,
            "DERIVATIVES_EXECUTOR": "process",
        }
    )


def test_the_modes_of_settings_ini_and_their_overrides(tmp_path: Path) -> None:
    """STORAGE=queued, DERIVATIVES_EXECUTOR, CELERY_BROKER_URL, BACKGROUND_UPLOADS."""
    assert setting("BACKGROUND_UPLOADS") == "True"
    assert setting("BACKGROUND_UPLOADS", BACKGROUND_UPLOADS="no") == "False"
    assert setting("CELERY_BROKER_URL") == "'memory://'"
    queued = setting("STORAGES", STORAGE="queued", MEDIA_ROOT=str(tmp_path))
    assert "'BACKEND': 'fileresponse.storage.QueuedStorage'" in queued
    assert "'local': 'local', 'remote': 'remote'" in queued
    assert f"'location': {str(tmp_path.resolve())!r}" in queued
    assert "'bucket': 'fileresponse'" in queued
    celery = {"DERIVATIVES_EXECUTOR": "celery", "CELERY_BROKER_URL": "redis://127.0.0.1:6399/2"}
    assert setting("CELERY_BROKER_URL", **celery) == "'redis://127.0.0.1:6399/2'"
    configured = setting("FILERESPONSE", **celery)
    assert "'DERIVATIVES_EXECUTOR': 'celery'" in configured
    assert "'DERIVATIVES_CELERY_APP': 'example.celery.app'" in configured
    assert "'DERIVATIVES_REDIS_URL': 'redis://127.0.0.1:6399/2'" in configured
    assert "'DERIVATIVES_EXECUTOR': 'thread'" in setting(
        "FILERESPONSE", DERIVATIVES_EXECUTOR="thread"
    )


def test_the_celery_app_is_example_celery_app() -> None:
    pytest.importorskip("celery")
    code = (
        "from celery.app.utils import find_app; app = find_app('example');"
        " app.loader.import_default_modules();"
        " print(app.main, sorted(name for name in app.tasks if name.startswith('fileresponse')))"
    )
    result = manage("shell", "--verbosity", "0", "--command", code)
    assert result.returncode == 0, result.stderr
    assert "example" in result.stdout
    assert "fileresponse.run_job" in result.stdout


def test_another_settings_file_can_be_named(tmp_path: Path) -> None:
    ini = tmp_path / "settings.ini"
    ini.write_text("[fileresponse]\nSECRET_KEY = from-another-file\nDEBUG = no\n", encoding="utf-8")
    assert setting("SECRET_KEY", FILERESPONSE_SETTINGS_FILE=str(ini)) == "'from-another-file'"
    assert setting("DEBUG", FILERESPONSE_SETTINGS_FILE=str(ini)) == "False"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"STORAGE": "dropbox"},
            "environment variable STORAGE is 'dropbox'; it must be one of: filesystem, minio, "
            "queued.",
        ),
        (
            {"DERIVATIVES_EXECUTOR": "celery"},
            "DERIVATIVES_EXECUTOR=celery needs CELERY_BROKER_URL",
        ),
        (
            {"DERIVATIVES_EXECUTOR": "gpu"},
            "environment variable DERIVATIVES_EXECUTOR is 'gpu'; it must be one of: process, "
            "thread, celery.",
        ),
        (
            {"STORAGE": "minio", "MINIO_BUCKET": ""},
            "MINIO_BUCKET must name a bucket when STORAGE=minio.",
        ),
        ({"DEBUG": "maybe"}, "environment variable DEBUG must be true or false, not 'maybe'."),
        ({"CHUNK_SIZE": "lots"}, "environment variable CHUNK_SIZE must be an integer, not 'lots'."),
    ],
)
def test_bad_values_fail_with_a_clear_message(overrides: dict[str, str], message: str) -> None:
    result = manage("check", **overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_missing_secret_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    ini = tmp_path / "empty.ini"
    ini.write_text("[fileresponse]\n", encoding="utf-8")
    result = manage("check", FILERESPONSE_SETTINGS_FILE=str(ini))
    assert result.returncode != 0
    assert f"SECRET_KEY is not set: add it to [fileresponse] in {ini}" in result.stderr


TEXT_SAMPLES_SCRIPT = """
import json
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.test import Client
from gallery.management.commands.prepare_media import SAMPLES

answers = {}
for name, produce in SAMPLES.items():
    if name.endswith(".txt"):
        content = produce()
        target = Path(settings.MEDIA_ROOT) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        response = Client(HTTP_HOST="localhost").get("/files/" + quote(name))
        body = b"".join(response.streaming_content)
        answers[name] = [response.status_code, response["Content-Type"], body == content]
print(json.dumps(answers))
"""


def test_the_example_text_files_are_served_as_utf8(tmp_path: Path) -> None:
    """A browser shows the example's UTF-8 text (Grüße, 日本語) right only with the charset."""
    result = manage(
        "shell", "--verbosity", "0", "--command", TEXT_SAMPLES_SCRIPT, MEDIA_ROOT=str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert "text/naïve café 日本語.txt" in answers
    assert set(map(tuple, answers.values())) == {(200, "text/plain; charset=utf-8", True)}
