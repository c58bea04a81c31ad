"""QueuedStorage in-process, with the local engine and the suite's real S3 server as remote.

The transfers run in the local engine's threads; rows live in the test
database (``transactional_db``: the threads see what the test commits).
Workers in other processes (Celery, Django Tasks), kills and the live form
post are in tests/test_queued_live.py.
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, storages
from django.core.management import call_command
from django.test import override_settings

from fileresponse.checks import check_transfers
from fileresponse.conf import validate
from fileresponse.models import StagedUpload, Transfer
from fileresponse.sources.filesystem import FilesystemSource
from fileresponse.sources.minio import MinioSource
from fileresponse.sources.storage import storage_source
from fileresponse.storage import MinioStorage, QueuedStorage
from fileresponse.storage.queued.engines import get_engine, reset_engines
from fileresponse.storage.queued.transfer import retry_delay, run_transfer
from tests.s3server import JuiceFSGateway, S3Target

pytestmark = pytest.mark.django_db(transaction=True)

LOCAL = "django.core.files.storage.FileSystemStorage"


def _wait_idle(seconds: float = 20) -> None:
    engine = get_engine("local")
    assert engine.wait_idle(seconds), "the local engine did not finish in time"  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    reset_engines()
    yield
    reset_engines()


def _read_uncommitted(connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA read_uncommitted = true")


@pytest.fixture(autouse=True)
def _readers_take_no_table_locks() -> Iterator[None]:
    """The test database is SQLite in memory with a shared cache, where a reader's table
    lock makes a concurrent writer fail at once ("database table is locked"), unlike a
    server database or a SQLite file: readers of these tests take none."""
    from django.db import connection
    from django.db.backends.signals import connection_created

    connection_created.connect(_read_uncommitted)
    connection.ensure_connection()
    _read_uncommitted(connection)
    yield
    connection_created.disconnect(_read_uncommitted)


@pytest.fixture(autouse=True)
def _threads_close_their_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Django never closes a connection to SQLite in memory (that would drop the database);
    the main thread's keeps it alive, so the engine's and I/O threads' may close theirs, as
    they do with any other database, instead of leaving them to the garbage collector."""
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.sqlite3.base import DatabaseWrapper

    in_memory_close = DatabaseWrapper.close

    def close(self: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            in_memory_close(self)
        else:
            BaseDatabaseWrapper.close(self)

    monkeypatch.setattr(DatabaseWrapper, "close", close)


def _queued_settings(tmp_path: Path, remote: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {
        "default": {"BACKEND": LOCAL},
        "queued": {
            "BACKEND": "fileresponse.storage.QueuedStorage",
            "OPTIONS": {
                "local": {"BACKEND": LOCAL, "OPTIONS": {"location": str(tmp_path / "local")}},
                "remote": remote,
                "engine": "local",
                "retry_delay": 0.05,
                **options,
            },
        },
    }


def _minio(s3: S3Target) -> dict[str, Any]:
    prefix = f"queued-{uuid.uuid4().hex[:8]}"
    return {
        "BACKEND": "fileresponse.storage.MinioStorage",
        "OPTIONS": s3.storage_options(prefix=prefix, connect_timeout=2.0, read_timeout=5.0),
    }


@pytest.fixture
def queued(tmp_path: Path, s3: S3Target) -> Iterator[QueuedStorage]:
    with override_settings(STORAGES=_queued_settings(tmp_path, _minio(s3))):
        storage = storages["queued"]
        assert isinstance(storage, QueuedStorage)
        yield storage


def _content(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def _read(storage: Any, name: str) -> bytes:
    with storage.open(name) as file:
        data: bytes = file.read()
    return data


def _row(name: str) -> Transfer:
    return Transfer.objects.get(storage="queued", name=name)


# ---------------------------------------------------------------- the transfer


def test_save_returns_at_once_and_reads_move_to_the_remote(queued: QueuedStorage) -> None:
    content = _content(1024 * 1024)
    queued.rate_limit = 2 * 1024 * 1024  # about half a second of copying

    started = time.monotonic()
    name = queued.save("docs/report.bin", ContentFile(content))
    took = time.monotonic() - started

    assert name == "docs/report.bin"
    assert took < 0.3
    assert queued.state(name) == "pending"
    assert queued.url(name) == queued.local.url(name)
    assert queued.local.exists(name)
    _wait_idle()
    row = _row(name)
    assert row.state == "done", row.error
    assert row.attempts == 1
    assert row.size == len(content)
    assert row.checksum == hashlib.sha256(content).hexdigest()
    assert not queued.local.exists(name)
    assert isinstance(queued.remote, MinioStorage)
    with queued.remote.open(name) as remote_file:
        assert hashlib.sha256(remote_file.read()).hexdigest() == row.checksum
    with queued.open(name) as file:
        assert file.read() == content
    assert queued.exists(name)
    assert queued.size(name) == len(content)
    assert queued.url(name) == queued.remote.url(name)
    assert queued.listdir("docs") == ([], ["report.bin"])


def test_files_are_readable_throughout_the_transfer(queued: QueuedStorage) -> None:
    content = _content(3 * 1024 * 1024, seed=11)
    queued.rate_limit = 6 * 1024 * 1024
    name = queued.save("moving.bin", ContentFile(content))
    holders: set[type] = set()
    reads = 0

    def read_everything() -> None:
        nonlocal reads
        with queued.open(name) as file:
            assert file.read() == content
        assert queued.exists(name)
        assert queued.size(name) == len(content)
        source = storage_source(queued, name)
        try:
            stat = source.stat()
            assert stat.size == len(content)
            assert b"".join(source.iter_range(0, stat.size, 256 * 1024)) == content
            holders.add(type(source._chosen))  # type: ignore[attr-defined]
        finally:
            source.close()
        reads += 1

    deadline = time.monotonic() + 20
    while queued.state(name) != "done" and time.monotonic() < deadline:
        read_everything()
    for _ in range(3):  # and after: from the remote storage
        read_everything()

    assert queued.state(name) == "done", _row(name).error
    assert reads > 4
    assert holders == {FilesystemSource, MinioSource}


def test_a_file_has_one_version_before_during_and_after_its_transfer(
    queued: QueuedStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from fileresponse.derivatives.keys import version_of
    from tests.inprocess import call_asgi, patched

    content = _content(2 * 1024 * 1024, seed=13)
    queued.rate_limit = 4 * 1024 * 1024  # about half a second of copying
    held: list[str] = []
    monkeypatch.setattr(queued, "queue", lambda name, delay=0: held.append(name))
    name = queued.save("versioned.bin", ContentFile(content))
    seen: dict[str, set[tuple[type, str, str | None, float]]] = {}
    etags: dict[str, set[str | None]] = {}

    def look(phase: str) -> None:
        for asynchronous in (False, True):
            source = storage_source(queued, name)
            try:
                stat = asyncio.run(source.astat()) if asynchronous else source.stat()
                holder = type(source._chosen)  # type: ignore[attr-defined]
            finally:
                source.close()
            seen.setdefault(phase, set()).add((holder, version_of(stat), stat.etag, stat.mtime))
        response = asyncio.run(call_asgi(patched(), f"/storage/queued/{name}"))
        assert response.status == 200
        assert response.body == content
        etags.setdefault(phase, set()).add(response.header("etag"))

    look("before")

    def transfer() -> None:
        from django.db import connections

        try:
            run_transfer("queued", name)
        finally:
            connections.close_all()

    copying = threading.Thread(target=transfer)
    copying.start()
    deadline = time.monotonic() + 20
    while copying.is_alive() and time.monotonic() < deadline:
        if _row(name).claimed_until is not None and _row(name).state == "pending":
            look("during")
    copying.join(20)
    look("after")

    assert held == [name]
    assert _row(name).state == "done", _row(name).error
    assert set(seen) == {"before", "during", "after"}
    assert {holder for phase in seen.values() for holder, *_ in phase} == {
        FilesystemSource,
        MinioSource,
    }
    versions = {tuple(version) for phase in seen.values() for _, *version in phase}
    checksum = hashlib.sha256(content).hexdigest()
    assert versions == {(checksum, checksum, _row(name).created.timestamp())}
    assert {etag for phase in etags.values() for etag in phase} == {f'"{checksum}"'}
    assert queued.get_modified_time(name) == _row(name).created
    # The validator of the local copy still matches the remote one: the same bytes.
    unchanged = asyncio.run(
        call_asgi(
            patched(), f"/storage/queued/{name}", headers=[("if-none-match", f'"{checksum}"')]
        )
    )
    assert unchanged.status == 304


def test_responses_follow_the_file(queued: QueuedStorage) -> None:
    import asyncio

    from tests.inprocess import call_asgi, patched

    content = _content(200_000, seed=3)
    name = queued.save("served.bin", ContentFile(content))
    _wait_idle()
    assert queued.state(name) == "done"

    response = asyncio.run(
        call_asgi(patched(), f"/storage/queued/{name}", headers=[("range", "bytes=100-199")])
    )

    assert response.status == 206
    assert response.body == content[100:200]


def test_a_name_is_free_only_when_free_in_both_storages(queued: QueuedStorage) -> None:
    first = queued.save("same.txt", ContentFile(b"one"))
    _wait_idle()
    assert not queued.local.exists(first)  # only in the remote storage now

    second = queued.save("same.txt", ContentFile(b"two"))
    _wait_idle()

    assert first == "same.txt"
    assert second != first
    assert _read(queued, first) == b"one"
    assert _read(queued, second) == b"two"


def test_delete_removes_the_row_and_both_copies(queued: QueuedStorage) -> None:
    queued.delete_local = False
    name = queued.save("gone.txt", ContentFile(b"bye"))
    _wait_idle()
    assert queued.local.exists(name)
    assert queued.remote.exists(name)

    queued.delete(name)

    assert not queued.exists(name)
    assert not queued.local.exists(name)
    assert not queued.remote.exists(name)
    assert not Transfer.objects.filter(name=name).exists()


def test_kept_local_copies_are_not_read_once_done(queued: QueuedStorage) -> None:
    queued.delete_local = False
    name = queued.save("kept.txt", ContentFile(b"remote now"))
    _wait_idle()

    assert queued.local.exists(name)
    assert queued.holders(name) == (queued.remote, queued.local)
    assert queued.url(name) == queued.remote.url(name)


# ---------------------------------------------------------------- crashes at each step


def test_a_partial_remote_copy_of_a_dead_worker_is_replaced(queued: QueuedStorage) -> None:
    content = _content(300_000, seed=5)
    name = queued.local.save("crashed.bin", ContentFile(content))
    queued.remote.save(name, ContentFile(content[:1000]))  # what an interrupted attempt left
    Transfer.objects.create(storage="queued", name=name, attempts=1)

    run_transfer("queued", name)

    row = _row(name)
    assert row.state == "done"
    assert row.attempts == 2
    assert queued.remote.size(name) == len(content)
    assert _read(queued, name) == content


def test_a_live_lease_keeps_other_workers_off(queued: QueuedStorage) -> None:
    from datetime import timedelta

    from django.utils import timezone

    name = queued.local.save("held.bin", ContentFile(b"x" * 100))
    Transfer.objects.create(
        storage="queued", name=name, claimed_until=timezone.now() + timedelta(seconds=60)
    )

    run_transfer("queued", name)

    assert _row(name).state == "pending"
    assert not queued.remote.exists(name)
    Transfer.objects.filter(name=name).update(claimed_until=timezone.now() - timedelta(seconds=1))
    run_transfer("queued", name)
    assert _row(name).state == "done"


def test_a_local_copy_left_after_done_is_deleted_by_the_next_run(queued: QueuedStorage) -> None:
    name = queued.local.save("leftover.txt", ContentFile(b"abc"))
    queued.remote.save(name, ContentFile(b"abc"))
    Transfer.objects.create(storage="queued", name=name, state="done")

    run_transfer("queued", name)

    assert not queued.local.exists(name)
    assert _read(queued, name) == b"abc"


class CorruptingStorage(FileSystemStorage):
    """Saves every file with one byte changed: what verification must catch."""

    def _save(self, name: str, content: Any) -> str:
        data = bytearray(content.read())
        data[len(data) // 2] ^= 0xFF
        return super()._save(name, ContentFile(bytes(data)))


def test_a_copy_that_differs_is_never_marked_done(tmp_path: Path) -> None:
    remote = {
        "BACKEND": f"{__name__}.CorruptingStorage",
        "OPTIONS": {"location": str(tmp_path / "remote")},
    }
    with override_settings(STORAGES=_queued_settings(tmp_path, remote, max_attempts=2)):
        queued = storages["queued"]
        name = queued.save("precious.bin", ContentFile(_content(5000)))
        _wait_idle()
        row = _row(name)
        # The local copy stays, and reads find it.
        assert _read(queued, name) == _content(5000)

    assert row.state == "failed"
    assert row.attempts == 2
    assert "sha256" in row.error
    assert (tmp_path / "local" / name).exists()


# ---------------------------------------------------------------- outage, retries, the command


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[JuiceFSGateway]:
    pytest.importorskip("minio")
    try:
        started = JuiceFSGateway(tmp_path / "s3").start()
    except RuntimeError as error:
        pytest.skip(f"no S3 server of our own: {error}")
    started.make_bucket("outage")
    yield started
    started.close()


def test_remote_down_fails_then_the_command_requeues_it(
    tmp_path: Path, gateway: JuiceFSGateway
) -> None:
    remote = {
        "BACKEND": "fileresponse.storage.MinioStorage",
        "OPTIONS": gateway.storage_options("outage", connect_timeout=1.0, read_timeout=2.0),
    }
    content = _content(70_000)
    with override_settings(STORAGES=_queued_settings(tmp_path, remote, max_attempts=3)):
        queued = storages["queued"]
        gateway.kill()
        name = queued.save("outage.bin", ContentFile(content))
        _wait_idle()
        row = _row(name)
        assert row.state == "failed"
        assert row.attempts == 3
        assert row.error
        assert _read(queued, name) == content  # still there, locally

        listing = io.StringIO()
        call_command("fileresponse_transfers", stdout=listing)
        gateway.start()
        retried = io.StringIO()
        call_command("fileresponse_transfers", "--retry", stdout=retried)
        _wait_idle()
        done = _row(name)
        after = io.StringIO()
        call_command("fileresponse_transfers", stdout=after)

    lines = listing.getvalue().splitlines()
    assert lines[0].split() == ["state", "attempts", "age", "file"]
    assert lines[1].split()[:3] == ["failed", "3", "0s"] or lines[1].split()[:2] == ["failed", "3"]
    assert f"queued:{name}" in lines[1]
    assert lines[-1] == "0 pending, 1 failed"
    assert retried.getvalue().splitlines()[-1] == "re-queued 1"
    assert done.state == "done"
    assert done.attempts == 1
    assert done.checksum == hashlib.sha256(content).hexdigest()
    assert after.getvalue().strip() == "0 pending, 0 failed"


def test_the_retry_delay_doubles_up_to_an_hour() -> None:
    assert [retry_delay(attempt, 10) for attempt in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert retry_delay(30, 10) == 3600


def test_the_command_filters_and_leaves_held_transfers(queued: QueuedStorage) -> None:
    from datetime import timedelta

    from django.utils import timezone

    Transfer.objects.create(storage="queued", name="a.txt", state="failed", attempts=5, error="E1")
    Transfer.objects.create(
        storage="queued", name="b.txt", claimed_until=timezone.now() + timedelta(minutes=5)
    )
    Transfer.objects.create(storage="queued", name="c.txt", state="done")

    failed = io.StringIO()
    call_command("fileresponse_transfers", "--failed", stdout=failed)
    everything = io.StringIO()
    call_command("fileresponse_transfers", "--all", stdout=everything)
    retried = io.StringIO()
    call_command("fileresponse_transfers", "--pending", "--retry", stdout=retried)

    assert "queued:a.txt  (E1)" in failed.getvalue()
    assert "b.txt" not in failed.getvalue()
    assert failed.getvalue().splitlines()[-1] == "1 failed"
    assert everything.getvalue().splitlines()[-1] == "1 pending, 1 failed, 1 done"
    assert retried.getvalue().splitlines()[-1] == (
        "re-queued 0; 1 left to the worker that holds it (lease not expired)"
    )
    with pytest.raises(Exception, match="no QueuedStorage"):
        call_command("fileresponse_transfers", "--storage", "default")


# ---------------------------------------------------------------- configuration


def test_misconfiguration_is_reported_by_the_checks(tmp_path: Path) -> None:
    broken = _queued_settings(tmp_path, "nowhere")
    with override_settings(STORAGES=broken, FILERESPONSE={"UPLOADS_STAGING_STORAGE": "staging"}):
        messages = check_transfers()

    ids = sorted(message.id or "" for message in messages)
    assert ids == ["fileresponse.E050", "fileresponse.E052"]
    assert "'nowhere' is not in STORAGES" in messages[0].msg


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"engine": "rabbit"}, "engine must be one of"),
        ({"rate_limit": 0}, "rate_limit must be positive"),
        ({"local": 3}, "local must be an alias"),
    ],
)
def test_bad_options_raise(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        QueuedStorage(**options)


def test_settings_are_validated() -> None:
    assert validate({"TRANSFERS_ENGINE": "celery", "TRANSFERS_LEASE": 5}) == []
    assert validate({"TRANSFERS_ENGINE": "rabbit"}) == [
        "TRANSFERS_ENGINE must be one of 'auto', 'local', 'celery', 'tasks', not 'rabbit'"
    ]
    assert validate({"TRANSFERS_RETRY_DELAY": 0.0}) == [
        "TRANSFERS_RETRY_DELAY must be a positive number of seconds, not 0.0"
    ]


def test_a_queued_storage_outside_storages_cannot_queue(tmp_path: Path) -> None:
    storage = QueuedStorage(local=FileSystemStorage(tmp_path), remote=FileSystemStorage(tmp_path))
    with pytest.raises(ImproperlyConfigured, match="must be an entry of STORAGES"):
        storage.save("x.txt", ContentFile(b"x"))


# ---------------------------------------------------------------- uploads, in-process


def test_an_upload_is_attached_by_a_job(tmp_path: Path, settings: Any) -> None:
    from fileresponse.uploads import (
        pending_upload,
        save_in_background,
        staging_storage,
        upload_saved,
        upload_state,
    )
    from tests.project.models import Photo

    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.FILERESPONSE = {"TRANSFERS_ENGINE": "local"}
    seen: list[tuple[Any, str]] = []
    attached = threading.Event()

    def receiver(sender: Any, instance: Photo, field: str, **kwargs: Any) -> None:
        seen.append((instance.pk, field))
        attached.set()

    upload_saved.connect(receiver, sender=Photo)
    try:
        photo = Photo(title="cat")
        staged = save_in_background(photo, "image", ContentFile(b"meow", name="cat.txt"))
        state_at_once = upload_state(photo, "image")
        staged_name = staged.staged_name
        assert attached.wait(10)
        _wait_idle()
    finally:
        upload_saved.disconnect(receiver, sender=Photo)

    assert state_at_once in ("pending", "done")
    photo.refresh_from_db()
    assert photo.image.name == "photos/cat.txt"
    with photo.image.open("rb") as file:
        assert file.read() == b"meow"
    assert upload_state(photo, "image") == "done"
    assert pending_upload(photo, "image") is None
    assert seen == [(photo.pk, "image")]
    assert not staging_storage().exists(staged_name)
    assert StagedUpload.objects.get(pk=staged.pk).saved_name == "photos/cat.txt"
