"""AsyncFileResponse through Django's handlers in-process: same answers everywhere."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from fileresponse.http import AsyncFileResponse
from fileresponse.sources.filesystem import FilesystemSource
from fileresponse.views import serve

from .inprocess import PATHSEND, Exchange, call_asgi, call_wsgi, patched, stock

DATA = bytes(range(256)) * 400  # 102,400 bytes


@pytest.fixture
def media(tmp_path: Path, settings: Any) -> Path:
    root = tmp_path / "media"
    (root / "nested").mkdir(parents=True)
    (root / "data.bin").write_bytes(DATA)
    (root / "nested" / "note.txt").write_text("hello\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "Größe €.txt").write_text("unicode name\n")
    (tmp_path / "secret.txt").write_text("outside the root\n")
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    (root / "inside-link.txt").symlink_to(root / "nested" / "note.txt")
    os.mkfifo(root / "fifo")
    settings.MEDIA_ROOT = str(root)
    return root


def etag_of(root: Path, name: str) -> str:
    info = (root / name).stat()
    return f'"{info.st_mtime_ns:x}-{info.st_size:x}"'


REQUESTS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("GET", "/files/data.bin", []),
    ("HEAD", "/files/data.bin", []),
    ("GET", "/files/data.bin", [("Range", "bytes=0-99")]),
    ("GET", "/files/data.bin", [("Range", "bytes=-100")]),
    ("GET", "/files/data.bin", [("Range", "bytes=100000-")]),
    ("GET", "/files/data.bin", [("Range", "bytes=0-9,1000-1999,-5")]),
    ("GET", "/files/data.bin", [("Range", "bytes=-5,1000-1999,0-9")]),
    ("GET", "/files/data.bin", [("Range", "bytes=0-")]),
    ("GET", "/files/data.bin", [("If-Range", '"stale"'), ("Range", "bytes=0-")]),
    ("GET", "/files/nested/note.txt", [("Range", "bytes=0-0,2-2")]),  # multipart > file: 200
    ("GET", "/files/data.bin", [("Range", "bytes=999999-")]),
    ("GET", "/files/data.bin", [("Range", "bytes=x-y")]),
    ("GET", "/files/data.bin", [("If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT")]),
    ("GET", "/files/data.bin", [("If-Match", '"nope"')]),
    ("GET", "/files/data.bin", [("If-Range", '"stale"'), ("Range", "bytes=0-9")]),
    ("GET", "/files/nested/note.txt", []),
    ("GET", "/files/empty.txt", []),
    ("GET", "/files/Größe €.txt", []),
    ("GET", "/attachment/nested/note.txt", []),
    ("GET", "/files/missing.txt", []),
    ("GET", "/files/nested", []),
    ("GET", "/files/../secret.txt", []),
    ("GET", "/files/escape.txt", []),
    ("GET", "/files/inside-link.txt", []),
    ("GET", "/files/fifo", []),
    ("POST", "/files/data.bin", []),
]


@pytest.mark.parametrize(("method", "path", "headers"), REQUESTS)
async def test_same_answer_under_every_handler(
    media: Path, method: str, path: str, headers: list[tuple[str, str]]
) -> None:
    answers: dict[str, Exchange] = {
        "patched": await call_asgi(patched(), path, method=method, headers=headers),
        "patched+pathsend": await call_asgi(
            patched(), path, method=method, headers=headers, extensions=PATHSEND
        ),
        "stock": await call_asgi(stock(), path, method=method, headers=headers),
    }
    for wrapper in (True, False):
        # WSGIHandler is sync and must not run on the event loop.
        answers[f"wsgi wrapper={wrapper}"] = await sync_to_async(call_wsgi, thread_sensitive=False)(
            path, method=method, headers=headers, file_wrapper=wrapper
        )
    reference = answers["patched"]
    assert reference.status < 500
    for name, answer in answers.items():
        assert answer.status == reference.status, name
        assert answer.comparable_headers() == reference.comparable_headers(), name
        if "multipart" not in (reference.header("Content-Type") or ""):
            assert answer.body == reference.body, name
        length = answer.header("Content-Length")
        if method != "HEAD" and length is not None:
            assert len(answer.body) == int(length), name


async def test_full_get(media: Path) -> None:
    answer = await call_asgi(patched(), "/files/data.bin")
    assert answer.status == 200
    assert answer.body == DATA
    assert answer.header("ETag") == etag_of(media, "data.bin")
    assert answer.header("Accept-Ranges") == "bytes"
    assert answer.header("Content-Type") == "application/octet-stream"
    assert answer.header("Content-Disposition") == 'inline; filename="data.bin"'
    assert answer.header("Last-Modified") is not None


async def test_pathsend_only_for_files_that_cannot_change(media: Path) -> None:
    """A file named by a request may be replaced after its stat: it goes out from its descriptor."""
    whole = await call_asgi(patched(), "/files/data.bin", extensions=PATHSEND)
    assert "http.response.pathsend" not in whole.messages
    assert whole.body == DATA


@pytest.mark.parametrize(("headers", "pathsend"), [([], True), ([(b"range", b"bytes=0-9")], False)])
async def test_pathsend_for_whole_immutable_files(
    media: Path, headers: list[tuple[bytes, bytes]], pathsend: bool
) -> None:
    scope = {"type": "http", "method": "GET", "path": "/x", "headers": headers}
    request = RequestFactory().get("/x", headers={k.decode(): v.decode() for k, v in headers})
    request.scope = scope  # type: ignore[attr-defined]
    source = FilesystemSource(media / "data.bin", immutable=True)
    response = await AsyncFileResponse.acreate(source, request)
    response.asgi_extensions = PATHSEND
    messages: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        messages.append(message)

    await response.send_asgi(send, [])
    types = [message["type"] for message in messages]
    if pathsend:
        assert types == ["http.response.start", "http.response.pathsend"]
        assert messages[1]["path"] == str(media / "data.bin")
        assert source.file_descriptor is None  # closed before the server opens it
    else:
        assert "http.response.pathsend" not in types
        assert b"".join(m.get("body", b"") for m in messages) == DATA[:10]


async def test_patched_handler_streams_in_chunks(media: Path, settings: Any) -> None:
    settings.FILERESPONSE = {"CHUNK_SIZE": 10_000}
    answer = await call_asgi(patched(), "/files/data.bin")
    assert answer.body == DATA
    # 11 chunks of at most 10,000 bytes, then the closing message.
    assert answer.messages.count("http.response.body") == 12


async def test_multipart_body(media: Path) -> None:
    answer = await call_asgi(
        patched(), "/files/data.bin", headers=[("Range", "bytes=0-9,1000-1999")]
    )
    content_type = answer.header("Content-Type") or ""
    boundary = content_type.split("boundary=")[1]
    parts = answer.body.split(f"--{boundary}".encode())
    assert parts[0] == b""
    assert parts[-1] == b"--\r\n"
    payloads = [part.split(b"\r\n\r\n", 1) for part in parts[1:-1]]
    assert [payload[1][:-2] for payload in payloads] == [DATA[0:10], DATA[1000:2000]]
    assert b"Content-Range: bytes 1000-1999/102400" in payloads[1][0]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([("If-None-Match", "ETAG")], 304),
        ([("If-None-Match", 'W/"x", ETAG')], 304),
        ([("If-None-Match", "*")], 304),
        ([("If-Match", "ETAG")], 200),
        ([("If-Match", '"other"')], 412),
        ([("If-Unmodified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")], 412),
        ([("If-Range", "ETAG"), ("Range", "bytes=0-9")], 206),
    ],
)
async def test_conditional(media: Path, headers: list[tuple[str, str]], status: int) -> None:
    etag = etag_of(media, "data.bin")
    headers = [(key, value.replace("ETAG", etag)) for key, value in headers]
    answer = await call_asgi(patched(), "/files/data.bin", headers=headers)
    assert answer.status == status
    if status == 304:
        assert answer.header("ETag") == etag
        assert answer.body == b""
        assert answer.header("Content-Type") is None


async def test_unsatisfiable(media: Path) -> None:
    answer = await call_asgi(patched(), "/files/data.bin", headers=[("Range", "bytes=200000-")])
    assert answer.status == 416
    assert answer.header("Content-Range") == f"bytes */{len(DATA)}"


@pytest.mark.parametrize(
    "path",
    [
        "/files/../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/nested/../../secret.txt",
        "/files/..%2fsecret.txt",
        "/files/%2e%2e%2fsecret.txt",
        "/files//etc/passwd",
        "/files/%2fetc/passwd",
        "/files/..\\secret.txt",
        "/files/%5c..%5csecret.txt",
        "/files/data.bin%00.txt",
        "/files/escape.txt",
        "/files/",
        "/files/fifo",
    ],
)
async def test_traversal_never_gives_content(media: Path, path: str) -> None:
    for handler in (patched(), stock()):
        answer = await call_asgi(handler, path)
        assert answer.status in (400, 404), (path, answer.status)
        assert b"outside the root" not in answer.body
        assert b"root:" not in answer.body


async def test_non_ascii_name_and_attachment(media: Path) -> None:
    answer = await call_asgi(patched(), "/attachment/Größe €.txt")
    assert answer.status == 200
    assert answer.header("Content-Disposition") == (
        "attachment; filename=\"Gro_e _.txt\"; filename*=UTF-8''Gr%C3%B6%C3%9Fe%20%E2%82%AC.txt"
    )


async def test_method_not_allowed(media: Path) -> None:
    answer = await call_asgi(patched(), "/files/data.bin", method="DELETE")
    assert answer.status == 405
    assert answer.header("Allow") == "GET, HEAD"


@pytest.mark.parametrize("handler", [patched, stock], ids=["patched", "stock"])
async def test_disconnect_closes_the_file(media: Path, settings: Any, handler: Any) -> None:
    settings.FILERESPONSE = {"CHUNK_SIZE": 1024}
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        answer = await call_asgi(handler(), "/files/data.bin", disconnect_after=3)
        assert answer.status == 200
        assert len(answer.body) < len(DATA)
    assert len(os.listdir("/proc/self/fd")) <= before


def test_constructor_in_sync_code(media: Path) -> None:
    request = RequestFactory().get("/", HTTP_RANGE="bytes=0-4")
    response = AsyncFileResponse(media / "data.bin", request)
    try:
        assert response.status_code == 206
        assert b"".join(response) == DATA[:5]
    finally:
        response.close()


def test_open_file_object(media: Path) -> None:
    request = RequestFactory().get("/", HTTP_RANGE="bytes=10-19")
    with open(media / "data.bin", "rb") as file:
        response = AsyncFileResponse(file, request)
        assert response.status_code == 206
        assert b"".join(response) == DATA[10:20]
        response.close()
        assert file.closed


async def test_in_memory_file(media: Path) -> None:
    import io

    response = await AsyncFileResponse.acreate(io.BytesIO(b"abcdef"), filename="x.txt")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "ETag" not in response
    assert "Last-Modified" not in response
    assert b"".join([chunk async for chunk in response]) == b"abcdef"


async def test_acreate_missing_file(media: Path) -> None:
    from fileresponse.exceptions import SourceNotFound

    with pytest.raises(SourceNotFound):
        await AsyncFileResponse.acreate(media / "missing")


async def test_cache_control_setting(media: Path, settings: Any) -> None:
    settings.FILERESPONSE = {"CACHE_CONTROL": "max-age=60"}
    answer = await call_asgi(patched(), "/files/data.bin")
    assert answer.header("Cache-Control") == "max-age=60"
    response = await AsyncFileResponse.acreate(
        media / "data.bin", cache_control="private, max-age=5"
    )
    assert response["Cache-Control"] == "private, max-age=5"
    response.close()


@pytest.mark.parametrize(
    ("setting", "path", "content_type"),
    [
        ({}, "nested/note.txt", "text/plain; charset=utf-8"),
        ({}, "data.bin", "application/octet-stream"),
        ({"TEXT_CHARSET": "iso-8859-1"}, "nested/note.txt", "text/plain; charset=iso-8859-1"),
        ({"TEXT_CHARSET": None}, "nested/note.txt", "text/plain"),
        ({"TEXT_CHARSET": ""}, "nested/note.txt", "text/plain"),
    ],
)
async def test_text_charset_setting(
    media: Path, settings: Any, setting: dict[str, Any], path: str, content_type: str
) -> None:
    settings.FILERESPONSE = setting
    answer = await call_asgi(patched(), "/files/" + path)
    assert answer.header("Content-Type") == content_type


async def test_an_explicit_charset_is_kept(media: Path) -> None:
    response = await AsyncFileResponse.acreate(
        media / "nested" / "note.txt", content_type="text/plain; charset=latin-1"
    )
    assert response["Content-Type"] == "text/plain; charset=latin-1"
    response.close()


@pytest.mark.parametrize("charset", ["utf-8; x=1", "utf 8", "utf-8\r\nX: y", 8])
def test_a_bad_text_charset_fails_loudly(settings: Any, charset: object) -> None:
    settings.FILERESPONSE = {"TEXT_CHARSET": charset}
    with pytest.raises(ImproperlyConfigured, match="TEXT_CHARSET must be"):
        AsyncFileResponse(__file__)
    assert [message.id for message in run_checks()] == ["fileresponse.E002"]


def test_unknown_setting_fails_loudly(settings: Any) -> None:
    settings.FILERESPONSE = {"CHUNKSIZE": 1}
    with pytest.raises(ImproperlyConfigured, match="unknown key 'CHUNKSIZE'"):
        AsyncFileResponse(__file__)
    assert [message.id for message in run_checks()] == ["fileresponse.E002"]
    settings.FILERESPONSE = {"CHUNK_SIZE": "big"}
    assert [message.id for message in run_checks()] == ["fileresponse.E002"]
    settings.FILERESPONSE = ["not", "a", "dict"]
    assert [message.id for message in run_checks()] == ["fileresponse.E001"]


async def test_a_middleware_that_replaces_the_content_is_respected(
    media: Path, settings: Any
) -> None:
    """GZipMiddleware wraps streaming_content: the wrapped bytes must go out."""
    settings.MIDDLEWARE = ["django.middleware.gzip.GZipMiddleware"]
    headers = [("Accept-Encoding", "gzip")]
    for handler in (patched(), stock()):
        answer = await call_asgi(handler, "/files/nested/note.txt", headers=headers)
        assert answer.header("Content-Encoding") == "gzip"
        assert gzip.decompress(answer.body) == b"hello\n"


async def test_source_reads_what_it_stat_ed(media: Path) -> None:
    source = FilesystemSource(media / "data.bin")
    response = await AsyncFileResponse.acreate(source)
    (media / "data.bin").unlink()
    (media / "data.bin").write_bytes(b"replaced")
    body = b"".join([chunk async for chunk in response])
    assert body == DATA
    response.close()


async def test_serve_with_document_root_argument(tmp_path: Path, settings: Any) -> None:
    (tmp_path / "x.txt").write_text("x")
    request = RequestFactory().get("/x.txt")
    response = await serve(request, "x.txt", document_root=str(tmp_path))
    assert response.status_code == 200
    response.close()
    settings.MEDIA_ROOT = ""
    with pytest.raises(ImproperlyConfigured):
        await serve(RequestFactory().get("/x.txt"), "x.txt")


async def test_a_file_dated_in_the_future_is_last_modified_now(media: Path) -> None:
    """RFC 9110 section 8.8.2.1; a date beyond any HTTP-date gave a 500 before."""
    import time
    from email.utils import parsedate_to_datetime

    future = time.time() + 365 * 86400
    os.utime(media / "data.bin", (future, future))
    answer = await call_asgi(patched(), "/files/data.bin")
    assert answer.status == 200
    sent = parsedate_to_datetime(answer.header("Last-Modified") or "").timestamp()
    assert sent <= time.time()


@pytest.mark.parametrize(
    ("path", "status", "reason"),
    [
        ("/files/escape.txt", 404, "UnsafePath: 'escape.txt': a symlink leads out of the root"),
        ("/files/missing.txt", 404, "SourceNotFound: 'missing.txt': no such file"),
        ("/files/fifo", 404, "not a regular file"),
    ],
)
async def test_error_pages_say_why_under_debug_only(
    media: Path,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    path: str,
    status: int,
    reason: str,
) -> None:
    caplog.set_level("INFO", logger="fileresponse")
    terse = await call_asgi(patched(), path)
    assert (terse.status, terse.body) == (status, b"404 Not Found\n")
    refusals = [r.getMessage() for r in caplog.records if r.name == "fileresponse"]
    assert len(refusals) == 1
    assert reason in refusals[0]
    assert path in refusals[0]
    settings.DEBUG = True
    debug = await call_asgi(patched(), path)
    assert debug.status == status
    assert reason in debug.body.decode()
