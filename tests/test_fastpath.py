"""The ASGI fast path: its settings and checks, then in-process, then through real servers.

The site is tests/fastpath_site: every file is served twice, by the fast path
(``/fast/...``) and by Django (the project's URLs, through a middleware that
marks its responses). Both must answer the same (status, headers, bytes),
except that the middleware's header shows on the Django route only and
``FAST_PATH_HEADERS`` on the fast path only.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.core import signals
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from fileresponse.asgi import get_asgi_application
from fileresponse.conf import get_config, validate
from fileresponse.derivatives import executor as executor_module
from fileresponse.derivatives.pipeline import clear_negative_cache
from fileresponse.fastpath import FastPathApplication, fast_routes
from fileresponse.handlers import AsyncFileASGIHandler
from fileresponse.staticfiles import load_static_files
from tests import rawhttp
from tests.fastpath_site import middleware
from tests.fastpath_site.statictree import StaticTree, collect_static
from tests.fields import outcome_of
from tests.inprocess import call_asgi
from tests.rawhttp import RawResponse
from tests.servers import (
    PATCHED_SERVERS,
    SECRET_MARKER,
    LiveServer,
    MediaTree,
    ServerPool,
    build_media_tree,
)
from tests.test_live import normalised

FAST_HEADERS = {"Access-Control-Allow-Origin": "*", "X-Content-Type-Options": "nosniff"}
#: Headers that tell the routes apart: the middleware's, and FAST_PATH_HEADERS.
ROUTE_HEADERS = ("x-test-middleware", *(name.lower() for name in FAST_HEADERS))


# ---------------------------------------------------------------- settings and checks


@pytest.mark.parametrize(
    ("paths", "problem"),
    [
        ({"static/": "static"}, "a prefix is a URL path that starts and ends with '/'"),
        ({"/static": "static"}, "a prefix is a URL path"),
        ({"/": "static"}, "a prefix is a URL path"),
        ({"//": "static"}, "a prefix is a URL path"),
        ({"/a//b/": "static"}, "a prefix is a URL path"),
        ({"/a b/": "static"}, "a prefix is a URL path"),
        ({"/a%2fb/": "static"}, "a prefix is a URL path"),
        ({"/a?/": "static"}, "a prefix is a URL path"),
        ({"/a\\b/": "static"}, "a prefix is a URL path"),
        ({"/\x00/": "static"}, "a prefix is a URL path"),
        ({"/a/../": "static"}, "no '.' or '..' segment"),
        ({"/./": "static"}, "no '.' or '..' segment"),
        ({1: "static"}, "a prefix is a URL path"),
        ({"/media/": "media"}, "unknown target 'media'"),
        ({"/media/": 3}, "a target is 'static', 'derivatives', {'root': dir} or"),
        ({"/media/": {"root": "relative/dir"}}, "'root' must be an absolute path"),
        ({"/media/": {"root": 5}}, "'root' must be an absolute path"),
        ({"/media/": {"storage": ""}}, "'storage' must be an alias of STORAGES"),
        ({"/media/": {"root": "/srv", "storage": "x"}}, "a target dict has one key"),
        ({"/media/": {"location": "/srv"}}, "a target dict has one key"),
        ({"/media/": {}}, "a target dict has one key"),
    ],
)
def test_bad_fast_paths_are_named(paths: dict[Any, Any], problem: str) -> None:
    problems = validate({"FAST_PATHS": paths})
    assert len(problems) == 1, problems
    assert problems[0].startswith("FAST_PATHS[")
    assert problem in problems[0]


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"Bad Name": "x"}, "a header name is a token"),
        ({"": "x"}, "a header name is a token"),
        ({"X-Ok": "a\r\nInjected: 1"}, "without CR, LF or NUL"),
        ({"X-Ok": 1}, "must be a str"),
        ({"Content-Length": "0"}, "the file responses set this header themselves"),
        ({"etag": '"x"'}, "the file responses set this header themselves"),
    ],
)
def test_bad_fast_path_headers_are_named(headers: dict[Any, Any], problem: str) -> None:
    problems = validate({"FAST_PATH_HEADERS": headers})
    assert len(problems) == 1, problems
    assert problem in problems[0]


def test_good_fast_paths(settings: Any, tmp_path: Path) -> None:
    settings.FILERESPONSE = {
        "FAST_PATHS": {
            "/static/": "static",
            "/media/thumbs/": "derivatives",
            "/media/": {"root": tmp_path},
            "/s3/": {"storage": "default"},
            "/a-b_c.d~e!$&'()*+,;=:@/": {"root": "/srv"},
        },
        "FAST_PATH_HEADERS": {"Vary": "Origin", "Access-Control-Allow-Origin": "*"},
        "STATIC_CACHE_CONTROL": None,
    }
    config = get_config()
    assert config.FAST_PATHS["/media/"] == {"root": str(tmp_path)}  # a path made text
    assert config.STATIC_CACHE_CONTROL is None
    with pytest.raises(TypeError):
        config.FAST_PATHS["/x/"] = "static"  # type: ignore[index]


def test_bad_settings_fail_at_start_up(settings: Any) -> None:
    settings.FILERESPONSE = {"FAST_PATHS": {"static": "static"}}
    with pytest.raises(ImproperlyConfigured, match=r"FAST_PATHS\['static'\]: a prefix"):
        get_asgi_application()


def ids(messages: list[Any]) -> list[str]:
    return sorted(message.id for message in messages if message.id.startswith("fileresponse."))


def test_a_bad_table_is_e040(settings: Any) -> None:
    settings.FILERESPONSE = {"FAST_PATHS": {"/x": "static"}, "FAST_PATH_HEADERS": {"a b": "c"}}
    assert ids(run_checks()) == ["fileresponse.E040", "fileresponse.E040"]


def test_targets_that_cannot_be_served_fail_the_checks(settings: Any, tmp_path: Path) -> None:
    settings.STATIC_ROOT = None
    settings.FILERESPONSE = {
        "FAST_PATHS": {
            "/static/": "static",
            "/s/": {"storage": "nowhere"},
            "/m/": {"root": str(tmp_path / "missing")},
            "/ok/": {"root": str(tmp_path)},
        }
    }
    messages = [message for message in run_checks() if message.id.startswith("fileresponse.E04")]
    messages += [message for message in run_checks() if message.id == "fileresponse.W040"]
    assert sorted(message.id for message in messages) == [
        "fileresponse.E041",
        "fileresponse.E042",
        "fileresponse.W040",
    ]
    text = " ".join(message.msg for message in messages)
    assert "FAST_PATHS['/static/'] serves STATIC_ROOT, which is not set" in text
    assert "storage 'nowhere' is not in settings.STORAGES" in text
    assert "missing" in text
    with pytest.raises(ImproperlyConfigured, match="STATIC_ROOT, which is not set"):
        fast_routes()
    settings.FILERESPONSE = {"FAST_PATHS": {"/s/": {"storage": "nowhere"}}}
    with pytest.raises(ImproperlyConfigured, match="'nowhere' is not in STORAGES"):
        fast_routes()


def test_a_static_root_not_collected_yet_is_a_warning(settings: Any, tmp_path: Path) -> None:
    settings.STATIC_ROOT = str(tmp_path / "not-yet")
    settings.FILERESPONSE = {"FAST_PATHS": {"/static/": "static"}}
    assert "fileresponse.W040" in ids(run_checks())


def test_the_application_is_wrapped_only_with_fast_paths(settings: Any, tmp_path: Path) -> None:
    settings.FILERESPONSE = {}
    assert type(get_asgi_application()) is AsyncFileASGIHandler
    settings.FILERESPONSE = {"FAST_PATHS": {"/m/": {"root": str(tmp_path)}}}
    application = get_asgi_application()
    assert isinstance(application, FastPathApplication)
    assert isinstance(application.app, AsyncFileASGIHandler)


# ---------------------------------------------------------------- in-process

DATA = os.urandom(200_000)


@dataclass
class Site:
    app: FastPathApplication
    media: Path
    derivatives: Path


@pytest.fixture
def site(settings: Any, tmp_path: Path) -> Iterator[Site]:
    media = tmp_path / "media"
    (media / "nested").mkdir(parents=True)
    (media / "data.bin").write_bytes(DATA)
    (media / "small.txt").write_bytes(b"small\n")
    (media / "nested" / "deep.txt").write_bytes(b"deep\n")
    settings.ROOT_URLCONF = "tests.fastpath_site.urls"
    settings.MIDDLEWARE = ["tests.fastpath_site.middleware.mark_response"]
    settings.MEDIA_ROOT = str(media)
    settings.STATIC_ROOT = str(media)
    settings.STATIC_URL = "/static/"
    settings.STORAGES = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    settings.FILERESPONSE = {
        "DERIVATIVES_ROOT": str(tmp_path / "derivatives"),
        "DERIVATIVES_EXECUTOR": "thread",
        "FAST_PATHS": {
            "/fast/files/": {"root": str(media)},
            "/fast/files/nested/": {"storage": "default"},
            "/fast/derivatives/": "derivatives",
            "/fast/static/": "static",
        },
        "FAST_PATH_HEADERS": {**FAST_HEADERS, "Vary": "Origin"},
    }
    clear_negative_cache()
    yield Site(FastPathApplication(AsyncFileASGIHandler()), media, tmp_path / "derivatives")
    executor_module.reset_executor()
    clear_negative_cache()
    load_static_files.reset()


async def test_fast_prefixes_skip_middleware_and_signals(site: Site) -> None:
    started: list[object] = []

    def on_started(**kwargs: object) -> None:
        started.append(kwargs)

    signals.request_started.connect(on_started)
    try:
        calls = [middleware.CALLS]
        fast = await call_asgi(site.app, "/fast/files/small.txt")
        calls.append(middleware.CALLS)
        assert started == []
        django = await call_asgi(site.app, "/files/small.txt")
        calls.append(middleware.CALLS)
        assert len(started) == 1
        assert calls[1] == calls[0], "no middleware on the fast path"
        assert calls[2] == calls[1] + 1
    finally:
        signals.request_started.disconnect(on_started)

    assert fast.status == django.status == 200
    assert fast.body == django.body == b"small\n"
    assert fast.header("X-Test-Middleware") is None
    assert django.header("X-Test-Middleware") == "ran"
    for name, value in FAST_HEADERS.items():
        assert fast.header(name) == value
        assert django.header(name) is None
    assert fast.header("Vary") == "Origin"


@pytest.mark.parametrize(
    ("path", "answered_by"),
    [
        ("/fast/files/small.txt", "root"),
        ("/fast/files/nested/deep.txt", "storage"),  # the longest prefix wins
        ("/fast/files", "django"),  # not under the prefix
        ("/fast/other/small.txt", "django"),
        ("/files/small.txt", "django"),
        ("/FAST/files/small.txt", "django"),  # paths are case-sensitive
    ],
)
async def test_only_the_configured_prefixes_are_owned(
    site: Site, path: str, answered_by: str
) -> None:
    answer = await call_asgi(site.app, path)
    assert (answer.header("X-Test-Middleware") == "ran") == (answered_by == "django")


async def test_the_longest_prefix_answers(site: Site, settings: Any) -> None:
    settings.FILERESPONSE = {
        **settings.FILERESPONSE,
        "FAST_PATHS": {
            "/fast/files/": {"root": str(site.media)},
            "/fast/files/nested/": {"root": str(site.media)},  # nested/ is this root
        },
    }
    answer = await call_asgi(site.app, "/fast/files/nested/small.txt")
    assert (answer.status, answer.body) == (200, b"small\n")


async def test_the_script_prefix_is_not_part_of_the_path(site: Site) -> None:
    scope_path = "/mounted/fast/files/small.txt"

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await site.app({**scope, "root_path": "/mounted"}, receive, send)

    answer = await call_asgi(app, scope_path)
    assert (answer.status, answer.body) == (200, b"small\n")
    assert answer.header("X-Test-Middleware") is None


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_are_405(site: Site, method: str) -> None:
    for path in ("/fast/files/small.txt", "/fast/derivatives/not/a/url", "/fast/static/x"):
        answer = await call_asgi(site.app, path, method=method)
        assert answer.status == 405
        assert answer.header("Allow") == "GET, HEAD"
        assert answer.header("X-Content-Type-Options") == "nosniff"


async def test_a_query_string_that_is_not_utf8_is_400(site: Site) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await site.app({**scope, "query_string": b"a=\xff"}, receive, send)

    answer = await call_asgi(app, "/fast/files/small.txt")
    assert answer.status == 400
    assert answer.header("Access-Control-Allow-Origin") == "*"


async def test_a_failing_view_is_a_logged_500(
    site: Site, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from fileresponse import views

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(views.AsyncFileResponse, "acreate", broken)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        answer = await call_asgi(site.app, "/fast/files/small.txt")
    assert answer.status == 500
    assert b"broken on purpose" not in answer.body  # DEBUG is off
    assert answer.header("Access-Control-Allow-Origin") == "*"
    (record,) = [record for record in caplog.records if record.name == "django.request"]
    assert record.getMessage() == "Internal Server Error: /fast/files/small.txt"
    assert record.exc_info is not None


async def test_headers_of_the_view_are_kept(site: Site, settings: Any) -> None:
    settings.FILERESPONSE = {
        **settings.FILERESPONSE,
        "FAST_PATH_HEADERS": {"Cache-Control": "public, max-age=9", "Vary": "Origin"},
        "CACHE_CONTROL": "max-age=1",
    }
    answer = await call_asgi(site.app, "/fast/files/small.txt")
    assert answer.header("Cache-Control") == "max-age=1"  # the response's own
    missing = await call_asgi(site.app, "/fast/files/missing.txt")
    assert missing.header("Cache-Control") == "public, max-age=9"
    static = await call_asgi(site.app, "/fast/static/small.txt")
    assert static.header("Vary") == "Origin"


async def test_the_lifespan_and_other_scopes_go_to_the_application(site: Site) -> None:
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, str]:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    await site.app({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_a_file_sends_itself_with_the_servers_extensions(site: Site) -> None:
    """The response gets the scope's extensions, as under the handler."""
    answer = await call_asgi(
        site.app, "/fast/files/data.bin", extensions={"http.response.pathsend": {}}
    )
    # A plain file may change under its name: sent from its descriptor, never by path.
    assert answer.body == DATA
    assert "http.response.pathsend" not in answer.messages
    # The library's worker sends that descriptor itself (sendfile).
    zero_copy = await call_asgi(
        site.app, "/fast/files/data.bin", extensions={"http.response.zerocopysend": {}}
    )
    assert zero_copy.status == 200
    assert zero_copy.messages == [
        "http.response.start",
        "http.response.zerocopysend",
        "http.response.body",
    ]


async def test_a_client_that_goes_away_stops_the_download(site: Site, settings: Any) -> None:
    settings.FILERESPONSE = {**settings.FILERESPONSE, "CHUNK_SIZE": 1024}
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        answer = await call_asgi(site.app, "/fast/files/data.bin", disconnect_after=3)
        assert answer.status == 200
        assert len(answer.body) < len(DATA)
    assert len(os.listdir("/proc/self/fd")) <= before


SAME_CASES: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "files/data.bin", {}),
    ("HEAD", "files/data.bin", {}),
    ("GET", "files/data.bin", {"Range": "bytes=10-19"}),
    ("GET", "files/data.bin", {"Range": "bytes=0-9,1000-1999,-5"}),
    ("GET", "files/data.bin", {"Range": "bytes=999999-"}),
    ("GET", "files/data.bin", {"If-None-Match": "{etag}"}),
    ("GET", "files/data.bin", {"If-Match": '"nope"'}),
    ("GET", "files/missing.bin", {}),
    ("GET", "files/nested/", {}),
    ("GET", "files/../small.txt", {}),
    ("POST", "files/small.txt", {}),
]


@pytest.mark.parametrize(("method", "target", "headers"), SAME_CASES)
async def test_the_same_answer_in_process(
    site: Site, method: str, target: str, headers: dict[str, str]
) -> None:
    etag = (await call_asgi(site.app, "/files/data.bin")).header("ETag") or ""
    filled = [(key, value.format(etag=etag)) for key, value in headers.items()]
    django = await call_asgi(site.app, "/" + target, method=method, headers=filled)
    fast = await call_asgi(site.app, "/fast/" + target, method=method, headers=filled)

    assert fast.status == django.status
    route = {*ROUTE_HEADERS, "vary"}
    assert [item for item in fast.comparable_headers() if item[0] not in route] == [
        item for item in django.comparable_headers() if item[0] not in route
    ]
    boundary = (django.header("Content-Type") or "").partition("boundary=")[2]
    fast_boundary = (fast.header("Content-Type") or "").partition("boundary=")[2]
    if boundary:
        assert fast.body.replace(fast_boundary.encode(), b"B") == django.body.replace(
            boundary.encode(), b"B"
        )
    else:
        assert fast.body == django.body


async def test_derivatives_in_process(site: Site) -> None:
    pytest.importorskip("PIL")
    from fileresponse.derivatives.signing import signed_path
    from fileresponse.derivatives.spec import parse_spec
    from tests import images

    (site.media / "photos").mkdir()
    (site.media / "photos" / "a.jpg").write_bytes(images.jpeg((600, 400)))
    signed = signed_path("photos/a.jpg", parse_spec("120x80 fill webp"))
    miss = await call_asgi(
        site.app, "/fast/derivatives/" + signed, extensions={"http.response.pathsend": {}}
    )
    assert miss.status == 200
    assert images.decode(miss.body).size == (120, 80)
    assert outcome_of(miss.header) == "miss"
    # A derivative cannot change under its name: the server may send it by path.
    assert "http.response.pathsend" in miss.messages
    hit = await call_asgi(site.app, "/derivatives/" + signed)
    assert hit.body == miss.body
    assert outcome_of(hit.header) == "hit"
    fast_hit = await call_asgi(site.app, "/fast/derivatives/" + signed)
    assert outcome_of(fast_hit.header) == "hit"
    assert fast_hit.header("Cache-Status") == hit.header("Cache-Status")
    assert hit.header("ETag") == miss.header("ETag")

    tampered = "A" + signed[1:] if signed[0] != "A" else "B" + signed[1:]
    for prefix in ("/fast/derivatives/", "/derivatives/"):
        refused = await call_asgi(site.app, prefix + tampered)
        assert (refused.status, refused.body) == (403, b"403 Forbidden\n")
    for bad in ("", "sig", "sig/opts", "sig/opts/", "/sig/opts/name"):
        answer = await call_asgi(site.app, "/fast/derivatives/" + bad)
        assert answer.status == 404, bad


# ---------------------------------------------------------------- live servers

FAST_SERVERS = PATCHED_SERVERS  # uvicorn, gunicorn with uvicorn workers, granian


@dataclass(frozen=True)
class LiveSite:
    media: MediaTree
    static: StaticTree
    derivatives: Path
    #: A JPEG of the media root, or None without Pillow.
    photo: str | None


class FastPathPool(ServerPool):
    """The servers of ServerPool, running tests/fastpath_site."""

    def __init__(self, site: LiveSite, log_dir: Path) -> None:
        super().__init__(site.media, log_dir)
        self.environ = {
            "DJANGO_SETTINGS_MODULE": "tests.fastpath_site.settings",
            "FILERESPONSE_TEST_STATIC_ROOT": str(site.static.root),
            "FILERESPONSE_TEST_DERIVATIVES_ROOT": str(site.derivatives),
            "FILERESPONSE_TEST_LOCK_DIR": str(site.derivatives.parent / "locks"),
        }

    def get(self, name: str) -> LiveServer:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in self.environ.items():
                patch.setenv(key, value)
            return super().get(name)


@pytest.fixture(scope="session")
def live_site(tmp_path_factory: pytest.TempPathFactory) -> LiveSite:
    base = tmp_path_factory.mktemp("fast-site")
    media = build_media_tree(base)
    photo = None
    try:
        from tests import images
    except ImportError:
        pass
    else:
        (media.root / "photos").mkdir()
        (media.root / "photos" / "fast.jpg").write_bytes(images.jpeg((800, 600)))
        photo = "photos/fast.jpg"
    return LiveSite(media, collect_static(base), base / "derivatives", photo)


@pytest.fixture(scope="session")
def fast_pool(
    live_site: LiveSite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastPathPool]:
    pool = FastPathPool(live_site, tmp_path_factory.mktemp("fast-logs"))
    yield pool
    pool.close()


@pytest.fixture(scope="session", params=FAST_SERVERS)
def fast_server(request: pytest.FixtureRequest, fast_pool: FastPathPool) -> LiveServer:
    return fast_pool.get(request.param)


@pytest.fixture
def no_tracebacks(fast_pool: FastPathPool) -> Iterator[None]:
    """Fail a test after which a server logged a traceback (a 500, an ASGI error)."""
    for running in fast_pool.running():
        running.new_log()
    yield
    for running in fast_pool.running():
        output = running.new_log()
        if "Traceback" in output or "Internal Server Error" in output:
            pytest.fail(f"{running.name} logged an error:\n{output[-6000:]}")


def fetch(
    server: LiveServer, target: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> RawResponse:
    return rawhttp.request(server.host, server.port, method, target, headers)


#: A derivative's diagnostics: they differ between a miss and a hit (checked on their own).
DIAGNOSTIC_HEADERS = ("cache-status", "server-timing")


def compared(response: RawResponse) -> tuple[int, dict[str, str], bytes]:
    """What must be the same on both routes: all but the headers that name the route, and
    the diagnostics of a derivative."""
    status, headers, body = normalised(response)
    left_out = (*ROUTE_HEADERS, *DIAGNOSTIC_HEADERS)
    return status, {key: value for key, value in headers.items() if key not in left_out}, body


@pytest.mark.live
@pytest.mark.usefixtures("no_tracebacks")
def test_live_fast_prefixes_skip_the_middleware(fast_server: LiveServer) -> None:
    fast = fetch(fast_server, "/fast/files/small.txt")
    django = fetch(fast_server, "/files/small.txt")
    not_configured = fetch(fast_server, "/fast/elsewhere/small.txt")

    assert fast.status == django.status == 200
    assert fast.body == django.body
    assert fast.header("X-Test-Middleware") is None
    assert django.header("X-Test-Middleware") == "ran"
    assert not_configured.status == 404
    assert not_configured.header("X-Test-Middleware") == "ran", "not a fast prefix: Django"
    for name, value in FAST_HEADERS.items():
        assert fast.header(name) == value
        assert django.header(name) is None


#: (method, path below /fast/ and below /, headers); ``{etag}`` and ``{last_modified}`` are
#: those of the file.
LIVE_CASES: list[tuple[str, str, str, dict[str, str]]] = [
    ("GET", "files/small.txt", "files/small.txt", {}),
    ("HEAD", "files/small.txt", "files/small.txt", {}),
    ("GET", "files/big.bin", "files/big.bin", {}),
    ("GET", "files/empty.txt", "files/empty.txt", {}),
    ("GET", "files/" + quote("résumé 日本語.txt"), "files/" + quote("résumé 日本語.txt"), {}),
    ("GET", "files/big.bin", "files/big.bin", {"Range": "bytes=0-99"}),
    ("GET", "files/big.bin", "files/big.bin", {"Range": "bytes=0-9,100-199,-10"}),
    ("HEAD", "files/big.bin", "files/big.bin", {"Range": "bytes=0-9,100-199"}),
    ("GET", "files/big.bin", "files/big.bin", {"Range": "bytes=99999999-"}),
    ("GET", "files/small.txt", "files/small.txt", {"If-None-Match": "{etag}"}),
    ("GET", "files/small.txt", "files/small.txt", {"If-Modified-Since": "{last_modified}"}),
    ("GET", "files/small.txt", "files/small.txt", {"If-Match": '"mismatch"'}),
    ("GET", "files/small.txt", "files/small.txt", {"Range": "bytes=0-9", "If-Range": '"x"'}),
    ("GET", "files/missing.txt", "files/missing.txt", {}),
    ("GET", "files/nested/", "files/nested/", {}),
    ("GET", "files/%2e%2e/outside/secret.txt", "files/%2e%2e/outside/secret.txt", {}),
    ("GET", "files/escape.txt", "files/escape.txt", {}),
    ("POST", "files/small.txt", "files/small.txt", {"Content-Length": "0"}),
    ("DELETE", "files/small.txt", "files/small.txt", {}),
    ("GET", "storage/small.txt", "storage/default/small.txt", {}),
    ("GET", "storage/big.bin", "storage/default/big.bin", {"Range": "bytes=5-9,20-29"}),
    ("GET", "storage/missing.txt", "storage/default/missing.txt", {}),
    ("GET", "static/css/site.css", "static/css/site.css", {"Accept-Encoding": "gzip, br"}),
    ("GET", "static/css/site.css", "static/css/site.css", {"Accept-Encoding": "gzip"}),
    ("GET", "static/js/app.js", "static/js/app.js", {}),
    ("HEAD", "static/plain.txt", "static/plain.txt", {}),
    ("GET", "static/missing.css", "static/missing.css", {}),
]


@pytest.mark.live
@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize(
    ("method", "fast_target", "django_target", "headers"),
    LIVE_CASES,
    ids=[f"{method} {target} {headers}" for method, target, _, headers in LIVE_CASES],
)
def test_live_the_same_answer_as_django(
    fast_server: LiveServer,
    method: str,
    fast_target: str,
    django_target: str,
    headers: dict[str, str],
) -> None:
    file = fetch(fast_server, "/files/small.txt")
    filled = {
        key: value.format(etag=file.header("ETag"), last_modified=file.header("Last-Modified"))
        for key, value in headers.items()
    }
    fast = fetch(fast_server, "/fast/" + fast_target, filled, method=method)
    django = fetch(fast_server, "/" + django_target, filled, method=method)

    assert compared(fast) == compared(django)
    assert fast.header("Access-Control-Allow-Origin") == "*"
    assert fast.header("X-Test-Middleware") is None
    assert SECRET_MARKER not in fast.wire_body


def _spec_for(server: LiveServer) -> str:
    """A spec of this server alone: its first request is a miss (the store is shared)."""
    width = 100 + 10 * FAST_SERVERS.index(server.name)
    return f"{width}x{width // 2} fill webp"


@pytest.mark.live
@pytest.mark.usefixtures("no_tracebacks")
def test_live_derivatives(fast_server: LiveServer, live_site: LiveSite) -> None:
    if live_site.photo is None:
        pytest.skip("no Pillow")
    from fileresponse.derivatives.signing import signed_path
    from fileresponse.derivatives.spec import parse_spec

    spec = parse_spec(_spec_for(fast_server))
    by_fast = signed_path(live_site.photo, spec)
    by_django = signed_path(live_site.photo, parse_spec(_spec_for(fast_server) + " q=60"))

    # A miss on each route, then a hit on the other: the same answers.
    fast_miss = fetch(fast_server, "/fast/derivatives/" + by_fast)
    django_hit = fetch(fast_server, "/derivatives/" + by_fast)
    django_miss = fetch(fast_server, "/derivatives/" + by_django)
    fast_hit = fetch(fast_server, "/fast/derivatives/" + by_django)
    assert fast_miss.status == django_miss.status == 200
    assert fast_miss.header("Content-Type") == "image/webp"
    assert compared(fast_miss) == compared(django_hit)
    assert compared(fast_hit) == compared(django_miss)
    assert fast_hit.header("X-Test-Middleware") is None
    assert fast_hit.header("Access-Control-Allow-Origin") == "*"
    outcomes = [
        outcome_of(answer.header) for answer in (fast_miss, django_hit, django_miss, fast_hit)
    ]
    assert outcomes == ["miss", "hit", "miss", "hit"]

    for headers in ({"Range": "bytes=0-99"}, {"If-None-Match": fast_hit.header("ETag") or ""}):
        fast = fetch(fast_server, "/fast/derivatives/" + by_django, headers)
        django = fetch(fast_server, "/derivatives/" + by_django, headers)
        assert compared(fast) == compared(django)
        assert outcome_of(fast.header) == outcome_of(django.header) == "hit"
    head = fetch(fast_server, "/fast/derivatives/" + by_django, method="HEAD")
    assert compared(head) == compared(
        fetch(fast_server, "/derivatives/" + by_django, method="HEAD")
    )

    signature, _, rest = by_fast.partition("/")
    tampered = ("A" if signature[0] != "A" else "B") + signature[1:] + "/" + rest
    fast_refused = fetch(fast_server, "/fast/derivatives/" + tampered)
    django_refused = fetch(fast_server, "/derivatives/" + tampered)
    assert fast_refused.status == 403
    assert compared(fast_refused) == compared(django_refused)
    assert outcome_of(fast_refused.header) is None


@pytest.mark.live
@pytest.mark.usefixtures("no_tracebacks")
def test_live_static_variants(fast_server: LiveServer, live_site: LiveSite) -> None:
    static = live_site.static

    def get(name: str, accept_encoding: str | None = None, **headers: str) -> RawResponse:
        if accept_encoding is not None:
            headers["Accept-Encoding"] = accept_encoding
        return fetch(fast_server, "/fast/static/" + name, headers)

    if static.has_brotli:
        brotli = get("css/site.css", "gzip, deflate, br")
        assert brotli.header("Content-Encoding") == "br"
        assert brotli.body == static.content("css/site.css.br")
    gzipped = get("css/site.css", "gzip")
    assert gzipped.header("Content-Encoding") == "gzip"
    assert gzipped.body == static.content("css/site.css.gz")
    for refused in ("br;q=0, gzip;q=0", None):
        identity = get("css/site.css", refused)
        assert identity.header("Content-Encoding") is None
        assert identity.body == static.content("css/site.css")
        assert identity.header("Vary") == "Accept-Encoding"
    not_modified = get("css/site.css", "gzip", **{"If-None-Match": gzipped.header("ETag") or ""})
    assert not_modified.status == 304
    assert not_modified.header("Vary") == "Accept-Encoding"
    assert not_modified.wire_body == b""

    hashed = get(static.hashed["js/app.js"], "gzip")
    assert hashed.header("Cache-Control") == "max-age=31536000, immutable"
    assert hashed.header("Content-Encoding") == "gzip"
    assert hashed.body == static.content(static.hashed["js/app.js"] + ".gz")
    assert get("js/app.js", "gzip").header("Cache-Control") == "max-age=60"
    image = get(static.hashed["img/dot.png"], "gzip, br")
    assert image.header("Cache-Control") == "max-age=31536000, immutable"
    assert image.header("Vary") is None


#: Targets below each fast prefix that must never be a 500 nor serve what is outside.
BAD_INPUT: list[str | bytes] = [
    "..",
    "../outside/secret.txt",
    "%2e%2e/outside/secret.txt",
    "..%2foutside%2fsecret.txt",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "nested%2fdir%2fdeep.txt%00",
    "%00",
    "small.txt%00.png",
    "%2f%2fetc%2fpasswd",
    "..%5coutside%5csecret.txt",
    "%ff%fe",
    "%ed%a0%80",  # a UTF-8 surrogate
    "%c0%ae%c0%ae/outside/secret.txt",  # overlong '.'
    "a" * 3000,
    "a/" * 1500 + "small.txt",
    b"small.txt\xff\xfe",  # bytes that are no UTF-8, unescaped
    "escape_dir/secret.txt",
]
FAST_PREFIXES = ["files", "storage", "static", "derivatives"]


@pytest.mark.live
@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize("prefix", FAST_PREFIXES)
@pytest.mark.parametrize("target", BAD_INPUT, ids=[repr(target)[:40] for target in BAD_INPUT])
def test_live_bad_input_is_refused(
    fast_server: LiveServer, prefix: str, target: str | bytes
) -> None:
    prefixed = f"/fast/{prefix}/".encode() + (
        target if isinstance(target, bytes) else target.encode()
    )
    response = rawhttp.request(fast_server.host, fast_server.port, "GET", prefixed)
    # 403: a derivative URL whose signature does not match (checked before the name).
    assert response.status in (400, 403, 404), (response.status, response.body[:300])
    assert SECRET_MARKER not in response.wire_body
    assert b"root:" not in response.wire_body
    assert response.header("X-Test-Middleware") is None, "the fast path answered"


@pytest.mark.live
@pytest.mark.usefixtures("no_tracebacks")
def test_live_keep_alive_through_the_fast_path(
    fast_server: LiveServer, live_site: LiveSite
) -> None:
    """Responses of every kind on one connection, each read by its own framing."""
    content = live_site.media.files["big.bin"]
    with rawhttp.PersistentConnection(fast_server.host, fast_server.port) as connection:
        head = connection.request("HEAD", "/fast/files/big.bin")
        etag = head.header("ETag") or ""
        not_modified = connection.request("GET", "/fast/files/big.bin", {"If-None-Match": etag})
        part = connection.request("GET", "/fast/files/big.bin", {"Range": "bytes=10-19"})
        whole = connection.request("GET", "/fast/files/big.bin")
        missing = connection.request("GET", "/fast/files/missing.txt")
        refused = connection.request("DELETE", "/fast/files/small.txt")
        static = connection.request("GET", "/fast/static/plain.txt")
        leftover = connection.pending()

    assert [r.status for r in (head, not_modified, part, whole, missing, refused, static)] == [
        200,
        304,
        206,
        200,
        404,
        405,
        200,
    ]
    assert part.body == content[10:20]
    assert whole.body == content
    assert static.body == live_site.static.content("plain.txt")
    assert leftover == b""


@pytest.mark.live
@pytest.mark.usefixtures("no_tracebacks")
def test_live_concurrent_small_files(fast_server: LiveServer, live_site: LiveSite) -> None:
    """200 requests on 16 connections at once: every answer whole and right."""
    expected = live_site.media.files["small.txt"]

    async def one(index: int) -> bytes:
        reader, writer = await asyncio.open_connection(fast_server.host, fast_server.port)
        try:
            received = []
            for _ in range(index % 3 + 1):
                writer.write(
                    rawhttp.build_request(
                        "GET", "/fast/files/small.txt", "fast", {"Connection": "keep-alive"}
                    )
                )
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                received.append(await reader.readexactly(length))
            return b"".join(received)
        finally:
            writer.close()

    async def burst() -> list[bytes]:
        semaphore = asyncio.Semaphore(16)

        async def limited(index: int) -> bytes:
            async with semaphore:
                return await one(index)

        return await asyncio.gather(*(limited(index) for index in range(200)))

    bodies = asyncio.run(burst())
    assert all(body == expected * (index % 3 + 1) for index, body in enumerate(bodies))
