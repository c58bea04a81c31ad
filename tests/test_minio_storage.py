"""MinioStorage, MinioSource and StorageSource in-process, against the suite's real S3 server.

Configuration and key checks need no server; everything else talks to the S3
server of the ``s3`` fixture (tests/s3server.py). Live servers, ranges over the
wire and faults are in tests/test_storage_live.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import io
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation
from django.core.files.base import ContentFile, File
from django.test import override_settings

from fileresponse.checks import check_minio
from fileresponse.exceptions import SourceNotFound, SourceUnavailable, StorageError, UnsafePath
from fileresponse.sources.storage import StorageSource, storage_source
from fileresponse.storage import MinioStorage
from fileresponse.storage.minio import aclose_clients, async_client, object_key
from tests.inprocess import call_asgi, call_wsgi, patched
from tests.s3server import S3Target, free_port

BASE = {"endpoint": "127.0.0.1:9", "bucket": "media", "secure": False}


# ---------------------------------------------------------------- configuration (no server)


def test_options_override_settings_in_any_case() -> None:
    with override_settings(FILERESPONSE_MINIO={"ENDPOINT": "a:1", "BUCKET": "one", "PREFIX": "x"}):
        storage = MinioStorage(bucket="two", PRESIGNED_TTL=60, prefix="/media/")

    assert storage.config.ENDPOINT == "a:1"
    assert storage.config.BUCKET == "two"
    assert storage.config.PRESIGNED_TTL == 60
    assert storage.config.PREFIX == "media"
    assert storage.config.SECURE is True


def test_the_secret_key_stays_out_of_reprs() -> None:
    storage = MinioStorage(**BASE, access_key="visible", secret_key="hidden-secret")

    assert "hidden-secret" not in repr(storage.config)
    assert "hidden-secret" not in repr(storage)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"colour": "blue"}, "unknown key 'COLOUR'"),
        ({"endpoint": ""}, "ENDPOINT is required"),
        ({"endpoint": "http://minio:9000"}, "without scheme"),
        ({"bucket": "No_Such"}, "valid S3 bucket name"),
        ({"bucket": "ab"}, "valid S3 bucket name"),
        ({"secure": "yes"}, "SECURE must be bool"),
        ({"delivery": "teleport"}, "DELIVERY must be one of stream, presigned, public"),
        ({"presigned_ttl": 8 * 86400}, "PRESIGNED_TTL must be between"),
        ({"prefix": "media/../other"}, "PREFIX must be a key prefix"),
        ({"access_key": "only-half"}, "ACCESS_KEY and SECRET_KEY go together"),
        ({"connect_timeout": 0}, "CONNECT_TIMEOUT must be positive"),
        ({"public_url": "cdn.example"}, "PUBLIC_URL must be an http(s) URL"),
    ],
)
def test_bad_options_raise_improperly_configured(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="MinIO storage") as raised:
        MinioStorage(**{**BASE, **options})

    assert message in str(raised.value)


def test_a_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "miniopy_async" else real_find_spec(name, *args),
    )

    with pytest.raises(ImproperlyConfigured, match=r"pip install 'fileresponse\[minio\]'"):
        MinioStorage(**BASE)


def test_settings_dict_with_unknown_keys_fails_the_check() -> None:
    with override_settings(FILERESPONSE_MINIO={"BUCKET_NAME": "x"}):
        messages = check_minio()

    assert [message.id for message in messages] == ["fileresponse.E010"]
    assert "BUCKET_NAME" in messages[0].msg


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("a.txt", "media/a.txt"),
        ("nested/dir/deep.txt", "media/nested/dir/deep.txt"),
        ("nested//dir/./deep.txt", "media/nested/dir/deep.txt"),
        ("résumé 日本語.txt", "media/résumé 日本語.txt"),
    ],
)
def test_keys_stay_under_the_prefix(path: str, key: str) -> None:
    assert object_key("media", path) == key


@pytest.mark.parametrize(
    "path",
    ["../x", "a/../../x", "/etc/passwd", "a\\..\\x", "a\x00b", "C:/x", "..", "x" * 1100],
)
def test_unsafe_keys_are_refused(path: str) -> None:
    with pytest.raises(UnsafePath):
        object_key("media", path)
    with pytest.raises(SuspiciousFileOperation):
        MinioStorage(**BASE, prefix="media").key(path)


# ---------------------------------------------------------------- the Storage API


@pytest.fixture
def storage(s3: S3Target, request: pytest.FixtureRequest) -> Iterator[MinioStorage]:
    """A MinioStorage under a prefix of its own, emptied afterwards."""
    prefix = f"unit/{request.node.name[:40].replace('[', '-').replace(']', '')}"
    storage = MinioStorage(**s3.storage_options(prefix=prefix, connect_timeout=2, read_timeout=5))
    yield storage
    client = s3.client()
    for item in client.list_objects(s3.bucket, prefix=prefix + "/", recursive=True):
        client.remove_object(s3.bucket, item.object_name)


@pytest.fixture
async def closing_clients() -> AsyncIterator[None]:
    """Close the test's event loop clients (pytest-asyncio would close them too, later)."""
    yield
    await aclose_clients()


@pytest.mark.minio
def test_sync_storage_round_trip(storage: MinioStorage, s3: S3Target) -> None:
    name = storage.save("docs/hello.txt", ContentFile(b"hello world\n"))
    assert name == "docs/hello.txt"
    again = storage.save("docs/hello.txt", ContentFile("accentué\n"))  # str content
    assert again != name
    assert again.startswith("docs/hello_")
    unknown_size = File(io.BytesIO(b"x" * 70000), "blob.bin")
    unknown_size.size = None  # type: ignore[assignment,misc]
    blob = storage.save("blob.bin", unknown_size)

    assert storage.exists(name)
    assert not storage.exists("docs/absent.txt")
    assert storage.size(name) == 12
    assert storage.size(again) == len("accentué\n".encode())
    assert storage.size(blob) == 70000
    modified = storage.get_modified_time(name)
    assert modified.tzinfo is not None
    assert abs((datetime.now(UTC) - modified).total_seconds()) < 120
    assert storage.listdir("") == (["docs"], ["blob.bin"])
    assert sorted(storage.listdir("docs")[1]) == sorted(["hello.txt", again.split("/")[-1]])

    with storage.open(name) as file:
        assert file.size == 12
        assert file.read(5) == b"hello"
        file.seek(6)
        assert file.read() == b"world\n"
        file.seek(0)
        assert file.read() == b"hello world\n"

    info = s3.client().stat_object(s3.bucket, storage.key(name))
    assert info.content_type.startswith("text/plain")

    storage.delete(name)
    assert not storage.exists(name)
    with pytest.raises(FileNotFoundError):
        storage.open(name)
    with pytest.raises(FileNotFoundError):
        storage.size(name)
    with pytest.raises(ValueError, match="for reading"):
        storage.open(again, "wb")
    with pytest.raises(SuspiciousFileOperation):
        storage.exists("../escape.txt")


@pytest.mark.minio
def test_url_follows_the_delivery_mode(storage: MinioStorage, s3: S3Target) -> None:
    options = {**s3.storage_options(prefix=storage.config.PREFIX)}

    presigned = MinioStorage(**options, presigned_ttl=90).url("a b.txt")
    public = MinioStorage(**options, delivery="public").url("a b.txt")
    cdn = MinioStorage(**options, delivery="public", public_url="https://cdn.example/").url("a.txt")
    view = MinioStorage(**options, base_url="/files/").url("a b.txt")

    object_url = f"{s3.scheme}://{s3.endpoint}/{s3.bucket}/{storage.config.PREFIX}/a%20b.txt"
    assert presigned.startswith(object_url + "?")
    assert "X-Amz-Expires=90" in presigned
    assert "X-Amz-Signature=" in presigned
    assert public == object_url
    assert cdn == f"https://cdn.example/{storage.config.PREFIX}/a.txt"
    assert view == "/files/a%20b.txt"


def test_deconstructs_to_its_public_path() -> None:
    path, args, kwargs = MinioStorage(**BASE, prefix="media").deconstruct()

    assert (path, args, kwargs) == (
        "fileresponse.storage.MinioStorage",
        (),
        {**BASE, "prefix": "media"},
    )


async def test_delivery_follows_the_delivery_mode_without_a_server() -> None:
    storage = MinioStorage(**BASE, prefix="p", delivery="public", base_url="/files/")

    assert storage.delivery == "public"
    assert (
        await storage.adelivery_url("a b.txt", "public") == "http://127.0.0.1:9/media/p/a%20b.txt"
    )
    assert await storage.adelivery_url("a b.txt", "stream") == "/files/a%20b.txt"
    assert await storage.aurl("a.txt") == storage.url("a.txt")
    with pytest.raises(ValueError, match="teleport"):
        await storage.adelivery_url("a.txt", "teleport")


@pytest.mark.minio
async def test_presigned_delivery_urls(storage: MinioStorage, closing_clients: None) -> None:
    presigned = await storage.adelivery_url("a.txt", "presigned")
    streamed = await storage.adelivery_url("a.txt", "stream")  # no BASE_URL: presigned too

    assert storage.delivery == "stream"
    assert "X-Amz-Signature=" in presigned
    assert "X-Amz-Signature=" in streamed


@pytest.mark.minio
async def test_async_storage_round_trip(storage: MinioStorage, closing_clients: None) -> None:
    name = await storage.asave("async/data.bin", b"\x00\x01" * 1000)
    from_file = await storage.asave("async/file.txt", ContentFile(b"text"))

    assert name == "async/data.bin"
    assert await storage.aexists(name)
    assert not await storage.aexists("async/absent.bin")
    assert await storage.asize(name) == 2000
    assert (await storage.aget_modified_time(name)).tzinfo is not None
    assert await storage.alistdir("async") == ([], ["data.bin", "file.txt"])
    assert "X-Amz-Signature=" in await storage.aurl(from_file)
    await storage.adelete(name)
    assert not await storage.aexists(name)
    with pytest.raises(FileNotFoundError):
        await storage.asize(name)


# ---------------------------------------------------------------- clients


@pytest.mark.minio
async def test_one_client_per_event_loop_and_configuration(
    storage: MinioStorage, closing_clients: None
) -> None:
    first = await async_client(storage.config)
    other_bucket = dataclasses.replace(storage.config, BUCKET="another")

    assert await async_client(storage.config) is first
    assert await async_client(other_bucket) is first  # the bucket is not part of the client
    assert not first.session.closed


@pytest.mark.minio
def test_clients_are_closed_when_their_event_loop_ends(storage: MinioStorage) -> None:
    async def use() -> Any:
        client = await async_client(storage.config)
        await storage.aexists("anything.txt")
        return client

    client = asyncio.run(use())

    assert client.session.closed
    assert asyncio.run(use()) is not client


# ---------------------------------------------------------------- sources


@pytest.mark.minio
async def test_minio_source_streams_in_bounded_chunks(
    storage: MinioStorage, closing_clients: None
) -> None:
    content = bytes(range(256)) * 4096  # 1 MiB
    storage.save("big.bin", ContentFile(content))
    source = storage.source("big.bin")

    stat = await source.astat()
    chunks = [chunk async for chunk in source.aiter_range(1000, len(content) - 2000, 65536)]
    head = b"".join(source.iter_range(5, 10, 4))
    source.close()

    assert stat.size == len(content)
    assert stat.etag
    assert stat.content_type is None  # application/octet-stream: the name decides
    assert max(len(chunk) for chunk in chunks) == 65536
    assert b"".join(chunks) == content[1000:-1000]
    assert head == content[5:15]
    with pytest.raises(SourceUnavailable, match="closed"):
        list(source.iter_range(0, 1, 1))


@pytest.mark.minio
async def test_an_object_replaced_after_the_stat_is_never_mixed_in(
    storage: MinioStorage, closing_clients: None
) -> None:
    storage.save("changing.txt", ContentFile(b"version one"))
    source = storage.source("changing.txt")
    await source.astat()
    storage.delete("changing.txt")
    storage.save("changing.txt", ContentFile(b"VERSION TWO"))

    with pytest.raises(SourceUnavailable, match="changed"):
        [chunk async for chunk in source.aiter_range(0, 11, 4)]
    with pytest.raises(SourceUnavailable, match="changed"):
        list(source.iter_range(0, 11, 4))


@pytest.mark.minio
async def test_source_errors(s3: S3Target, storage: MinioStorage, closing_clients: None) -> None:
    with pytest.raises(SourceNotFound):
        await storage.source("absent.txt").astat()
    with pytest.raises(SourceNotFound):
        storage.source("absent.txt").stat()

    no_bucket = MinioStorage(**s3.storage_options(bucket="no-such-bucket-here"))
    with pytest.raises(StorageError, match="has no bucket 'no-such-bucket-here'"):
        await no_bucket.source("a.txt").astat()
    with pytest.raises(StorageError, match="has no bucket"):
        no_bucket.source("a.txt").stat()

    refused = MinioStorage(**s3.storage_options(secret_key="not-the-secret-key"))
    with pytest.raises(StorageError, match="refused access key"):
        await refused.source("a.txt").astat()

    down = MinioStorage(**s3.storage_options(endpoint=f"127.0.0.1:{free_port()}"))
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match="did not answer"):
        await down.source("a.txt").astat()
    with pytest.raises(SourceUnavailable, match="did not answer"):
        down.source("a.txt").stat()
    assert time.monotonic() - started < 2


@pytest.mark.minio
def test_storage_source_selection(storage: MinioStorage, tmp_path: Any) -> None:
    from django.core.files.storage import FileSystemStorage

    from fileresponse.sources.filesystem import FilesystemSource
    from fileresponse.sources.minio import MinioSource
    from tests.project.storages import OpaqueStorage

    assert isinstance(storage_source(storage, "a.txt"), MinioSource)
    assert isinstance(storage_source(FileSystemStorage(tmp_path), "a.txt"), FilesystemSource)
    assert isinstance(storage_source(OpaqueStorage(str(tmp_path)), "a.txt"), StorageSource)
    with pytest.raises(UnsafePath):
        storage_source(OpaqueStorage(str(tmp_path)), "../a.txt")


def test_storage_source_maps_storage_errors(tmp_path: Any) -> None:
    from tests.project.storages import OpaqueStorage

    class Unreachable(OpaqueStorage):
        def size(self, name: str) -> int:
            raise ConnectionRefusedError("no route")

    (tmp_path / "a.txt").write_bytes(b"abc")
    assert StorageSource(OpaqueStorage(str(tmp_path)), "a.txt").stat().size == 3
    with pytest.raises(SourceNotFound):
        StorageSource(OpaqueStorage(str(tmp_path)), "b.txt").stat()
    with pytest.raises(SourceUnavailable, match="ConnectionRefusedError"):
        StorageSource(Unreachable(str(tmp_path)), "a.txt").stat()


# ---------------------------------------------------------------- the view, in-process


def _storages(**entries: dict[str, Any]) -> dict[str, Any]:
    return {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        **{
            alias: {"BACKEND": "fileresponse.storage.MinioStorage", "OPTIONS": options}
            for alias, options in entries.items()
        },
    }


@pytest.mark.minio
async def test_view_in_process_under_asgi_and_wsgi(
    s3: S3Target, storage: MinioStorage, closing_clients: None
) -> None:
    storage.save("page.txt", ContentFile(b"0123456789"))
    options = s3.storage_options(prefix=storage.config.PREFIX)
    with override_settings(STORAGES=_storages(minio=options)):
        asgi = await call_asgi(
            patched(), "/storage/minio/page.txt", headers=[("Range", "bytes=2-4")]
        )
        wsgi = await asyncio.to_thread(
            call_wsgi, "/storage/minio/page.txt", headers=[("Range", "bytes=2-4")]
        )
        missing = await call_asgi(patched(), "/storage/minio/absent.txt")

    assert (asgi.status, asgi.body) == (206, b"234")
    assert (wsgi.status, wsgi.body) == (206, b"234")
    assert asgi.header("ETag") == wsgi.header("ETag")
    assert missing.status == 404


@pytest.mark.minio
async def test_refused_credentials_are_a_500_with_a_clear_log_line(
    s3: S3Target, caplog: pytest.LogCaptureFixture, closing_clients: None
) -> None:
    refused = s3.storage_options(secret_key="not-the-secret-key", prefix="media")
    with (
        override_settings(STORAGES=_storages(minio=refused)),
        caplog.at_level(logging.ERROR, logger="fileresponse"),
    ):
        response = await call_asgi(patched(), "/storage/minio/small.txt")

    assert response.status == 500
    assert any("refused access key" in record.getMessage() for record in caplog.records)


# ---------------------------------------------------------------- system checks


@pytest.mark.minio
def test_system_check_passes_for_a_working_storage(s3: S3Target) -> None:
    with override_settings(STORAGES=_storages(minio=s3.storage_options())):
        assert check_minio() == []


@pytest.mark.minio
@pytest.mark.parametrize(
    ("options", "check_id", "message"),
    [
        ({"secret_key": "not-the-secret-key"}, "fileresponse.E011", "refused access key"),
        ({"bucket": "no-such-bucket-here"}, "fileresponse.E012", "the bucket does not exist"),
        ({"endpoint": "127.0.0.1:{port}"}, "fileresponse.W011", "did not answer"),
    ],
)
def test_system_check_reports_refused_credentials_missing_bucket_and_silence(
    s3: S3Target, options: dict[str, str], check_id: str, message: str
) -> None:
    options = {key: value.format(port=free_port()) for key, value in options.items()}
    with override_settings(STORAGES=_storages(broken=s3.storage_options(**options))):
        started = time.monotonic()
        messages = check_minio()
        elapsed = time.monotonic() - started

    assert [item.id for item in messages] == [check_id]
    assert message in messages[0].msg
    assert "STORAGES['broken']" in messages[0].msg
    assert elapsed < 6
