"""Static files: the Accept-Encoding choice (a pure table), then STATIC_ROOT in-process.

``STATIC_ROOT`` comes from a real ``collectstatic`` with ManifestStaticFilesStorage
(tests/fastpath_site/statictree.py), precompressed here with gzip and Brotli. Each
request goes through Django (:func:`fileresponse.staticfiles.serve_static` in the
URLconf) and through the fast path, which must answer the same; the live servers
are in tests/test_fastpath.py.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fileresponse.fastpath import FastPathApplication
from fileresponse.handlers import AsyncFileASGIHandler
from fileresponse.http.negotiation import choose_encoding, encoding_qualities
from fileresponse.staticfiles import IMMUTABLE_CACHE_CONTROL, load_static_files
from tests.fastpath_site.statictree import StaticTree, brotli_module, collect_static
from tests.inprocess import Exchange, call_asgi

# ---------------------------------------------------------------- the choice (pure)

BOTH = ("br", "gzip")


@pytest.mark.parametrize(
    ("accept_encoding", "available", "chosen"),
    [
        (None, BOTH, None),  # no field: no preference, the identity
        ("", BOTH, None),  # an empty field: the identity only
        ("gzip, deflate, br, zstd", BOTH, "br"),  # a browser: the first of ours it accepts
        ("gzip, br", BOTH, "br"),
        ("br, gzip", ("gzip", "br"), "gzip"),  # equal qualities: the server's order
        ("gzip", BOTH, "gzip"),
        ("x-gzip", BOTH, "gzip"),  # RFC 9110 §8.4.1.3
        ("GZIP, BR", BOTH, "br"),  # codings are case-insensitive
        ("br", ("gzip",), None),  # nothing acceptable on offer: the identity
        ("br;q=0.5, gzip;q=0.8", BOTH, "gzip"),  # the highest quality wins
        ("br;q=0.8, gzip;q=0.8", BOTH, "br"),
        ("br;q=0, gzip", BOTH, "gzip"),
        ("br;q=0, gzip;q=0", BOTH, None),
        ("br;q=0, gzip;q=0, identity;q=0", BOTH, None),  # the RFC lets us send the identity
        ("*", BOTH, "br"),
        ("*;q=0", BOTH, None),
        ("*;q=0, gzip", BOTH, "gzip"),
        ("gzip;q=0, *", BOTH, "br"),
        ("gzip;q=0.5, *;q=0.1", BOTH, "gzip"),
        ("identity", BOTH, None),  # the identity named, codings not: not acceptable
        ("identity;q=0, gzip", BOTH, "gzip"),
        ("identity;q=0.5, gzip;q=0.4", BOTH, None),  # a named identity competes
        ("identity;q=0.5, gzip;q=0.5", BOTH, "gzip"),  # a coding wins the tie
        ("gzip;q=0.001", BOTH, "gzip"),  # an unnamed identity ranks below any coding
        ("br;q=2, gzip;q=0.1", BOTH, "gzip"),  # not a qvalue: left out
        ("br;q=abc, gzip;q=0.1", BOTH, "gzip"),
        ("br;q=0.5000, gzip;q=0.1", BOTH, "gzip"),  # at most three decimals
        ("br ; Q=0.9 , gzip;q=0.1", BOTH, "br"),  # spaces, Q in upper case
        ("gzip;q=0, gzip;q=1", BOTH, "gzip"),  # named twice: the highest quality
        (",,, ;q=1, gzip", BOTH, "gzip"),  # empty members
        ("deflate, zstd", BOTH, None),
        ("gzip, br", (), None),  # no variants
    ],
)
def test_choose_encoding(
    accept_encoding: str | None, available: tuple[str, ...], chosen: str | None
) -> None:
    assert choose_encoding(accept_encoding, available) == chosen


@pytest.mark.parametrize(
    ("accept_encoding", "qualities"),
    [
        ("br;q=1.0, gzip;q=0.8, *;q=0", {"br": 1.0, "gzip": 0.8, "*": 0.0}),
        ("x-gzip;q=0.3, gzip;q=0.2", {"gzip": 0.3}),
        ("br;q=1.5", {}),
        ("br;q=", {}),
        ("br;q=.5", {}),
        ("identity", {"identity": 1.0}),
        ("", {}),
    ],
)
def test_encoding_qualities(accept_encoding: str, qualities: dict[str, float]) -> None:
    assert dict(encoding_qualities(accept_encoding)) == qualities


# ---------------------------------------------------------------- STATIC_ROOT in-process


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> StaticTree:
    return collect_static(tmp_path_factory.mktemp("static"))


Fetch = Callable[..., Any]


@pytest.fixture
def site(settings: Any, tree: StaticTree) -> Iterator[dict[str, Callable[..., Any]]]:
    """The static files by the Django route (``/static/``) and the fast path (``/fast/static/``)."""
    settings.ROOT_URLCONF = "tests.fastpath_site.urls"
    settings.MIDDLEWARE = []
    settings.STATIC_URL = "/static/"
    settings.STATIC_ROOT = str(tree.root)
    settings.STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }
    settings.FILERESPONSE = {"FAST_PATHS": {"/fast/static/": "static"}}
    handler = AsyncFileASGIHandler()
    fast = FastPathApplication(handler)

    async def django(name: str, **kwargs: Any) -> Exchange:
        return await call_asgi(handler, "/static/" + name, **kwargs)

    async def fast_path(name: str, **kwargs: Any) -> Exchange:
        return await call_asgi(fast, "/fast/static/" + name, **kwargs)

    yield {"django": django, "fast": fast_path}
    load_static_files.reset()


ROUTES = ["django", "fast"]


def accept(value: str) -> list[tuple[str, str]]:
    return [("Accept-Encoding", value)]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("accept_encoding", "coding"),
    [
        ("gzip, deflate, br, zstd", "br"),
        ("gzip", "gzip"),
        ("br;q=0, gzip;q=0", None),
        ("identity;q=0, gzip", "gzip"),
        (None, None),
    ],
)
async def test_the_variant_accept_encoding_prefers(
    site: dict[str, Fetch],
    tree: StaticTree,
    route: str,
    accept_encoding: str | None,
    coding: str | None,
) -> None:
    if coding == "br" and not tree.has_brotli:
        pytest.skip("no Brotli module: no .br variants")
    headers = [] if accept_encoding is None else accept(accept_encoding)
    response = await site[route]("css/site.css", headers=headers)

    original = tree.content("css/site.css")
    suffix = {"br": ".br", "gzip": ".gz", None: ""}[coding]
    assert response.status == 200
    assert response.body == tree.content("css/site.css" + suffix)
    assert response.header("Content-Encoding") == coding
    assert response.header("Content-Type") == "text/css; charset=utf-8"
    assert response.header("Content-Length") == str(len(response.body))
    assert response.header("Vary") == "Accept-Encoding"
    assert response.header("Content-Disposition") == 'inline; filename="site.css"'
    if coding == "gzip":
        assert gzip.decompress(response.body) == original
    if coding == "br":
        brotli: Any = brotli_module()
        assert brotli.decompress(response.body) == original


@pytest.mark.parametrize("route", ROUTES)
async def test_each_variant_has_its_own_validator(
    site: dict[str, Fetch], tree: StaticTree, route: str
) -> None:
    fetch = site[route]
    identity = await fetch("css/site.css")
    gzipped = await fetch("css/site.css", headers=accept("gzip"))
    etags = {identity.header("ETag"), gzipped.header("ETag")}
    assert len(etags) == 2, "different bytes, different entity tags"

    # 304s carry Vary (RFC 9110 §15.4.5), for the variant they validate.
    gzip_etag = gzipped.header("ETag") or ""
    not_modified = await fetch(
        "css/site.css", headers=[*accept("gzip"), ("If-None-Match", gzip_etag)]
    )
    assert not_modified.status == 304
    assert not_modified.body == b""
    assert not_modified.header("Vary") == "Accept-Encoding"
    assert not_modified.header("ETag") == gzip_etag
    # The identity's tag does not validate the gzip variant, nor the reverse.
    other = await fetch("css/site.css", headers=[("If-None-Match", gzip_etag)])
    assert other.status == 200
    assert other.header("Content-Encoding") is None
    # A precondition on the variant: 412 with Vary.
    failed = await fetch(
        "css/site.css", headers=[*accept("gzip"), ("If-Match", identity.header("ETag") or "")]
    )
    assert failed.status == 412
    assert failed.header("Vary") == "Accept-Encoding"


@pytest.mark.parametrize("route", ROUTES)
async def test_ranges_are_of_the_variant_bytes(
    site: dict[str, Fetch], tree: StaticTree, route: str
) -> None:
    response = await site[route]("css/site.css", headers=[*accept("gzip"), ("Range", "bytes=0-9")])
    assert response.status == 206
    assert response.body == tree.content("css/site.css.gz")[:10]
    size = len(tree.content("css/site.css.gz"))
    assert response.header("Content-Range") == f"bytes 0-9/{size}"
    assert response.header("Content-Encoding") == "gzip"
    assert response.header("Vary") == "Accept-Encoding"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", ["css/site.css", "js/app.js", "img/dot.png", "plain.txt"])
async def test_hashed_names_are_immutable_and_the_others_not(
    site: dict[str, Fetch], tree: StaticTree, route: str, name: str
) -> None:
    fetch = site[route]
    plain = await fetch(name, headers=accept("gzip, br"))
    hashed = await fetch(tree.hashed[name], headers=accept("gzip, br"))

    assert plain.status == hashed.status == 200
    assert plain.header("Cache-Control") == "max-age=60"  # STATIC_CACHE_CONTROL's default
    assert hashed.header("Cache-Control") == IMMUTABLE_CACHE_CONTROL
    # The hashed copy has the same variants as its original.
    assert hashed.header("Content-Encoding") == plain.header("Content-Encoding")
    assert hashed.header("Vary") == plain.header("Vary")


@pytest.mark.parametrize("route", ROUTES)
async def test_no_vary_for_a_file_without_variants(site: dict[str, Fetch], route: str) -> None:
    response = await site[route]("img/dot.png", headers=accept("gzip, br"))
    assert response.status == 200
    assert response.header("Vary") is None
    assert response.header("Content-Encoding") is None
    assert response.header("Content-Type") == "image/png"


@pytest.mark.parametrize("route", ROUTES)
async def test_a_variant_asked_by_name_is_a_file_of_its_own(
    site: dict[str, Fetch], tree: StaticTree, route: str
) -> None:
    response = await site[route]("css/site.css.gz", headers=accept("gzip"))
    assert response.status == 200
    assert response.body == tree.content("css/site.css.gz")
    assert response.header("Content-Type") == "application/gzip"
    assert response.header("Content-Encoding") is None


async def test_without_a_manifest_nothing_is_immutable(
    site: dict[str, Fetch], settings: Any, tree: StaticTree
) -> None:
    settings.STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    response = await site["fast"](tree.hashed["css/site.css"])
    assert response.status == 200
    assert response.header("Cache-Control") == "max-age=60"


async def test_static_cache_control_is_a_setting(
    site: dict[str, Fetch], settings: Any, tree: StaticTree
) -> None:
    settings.FILERESPONSE = {
        "FAST_PATHS": {"/fast/static/": "static"},
        "STATIC_CACHE_CONTROL": "no-cache",
    }
    assert (await site["fast"]("plain.txt")).header("Cache-Control") == "no-cache"
    hashed = await site["fast"](tree.hashed["plain.txt"])
    assert hashed.header("Cache-Control") == IMMUTABLE_CACHE_CONTROL
    settings.FILERESPONSE = {
        "FAST_PATHS": {"/fast/static/": "static"},
        "STATIC_CACHE_CONTROL": None,
        "CACHE_CONTROL": "max-age=5",
    }
    assert (await site["fast"]("plain.txt")).header("Cache-Control") == "max-age=5"


async def test_a_variant_removed_since_the_scan_gives_the_file(
    site: dict[str, Fetch], tmp_path: Path, settings: Any
) -> None:
    root = tmp_path / "static-root"
    (root / "css").mkdir(parents=True)
    (root / "css" / "a.css").write_bytes(b"a { color: red }\n")
    (root / "css" / "a.css.gz").write_bytes(gzip.compress(b"a { color: red }\n"))
    settings.STATIC_ROOT = str(root)
    first = await site["fast"]("css/a.css", headers=accept("gzip"))
    assert first.header("Content-Encoding") == "gzip"
    os.unlink(root / "css" / "a.css.gz")
    second = await site["fast"]("css/a.css", headers=accept("gzip"))
    assert second.status == 200
    assert second.body == b"a { color: red }\n"
    assert second.header("Content-Encoding") is None
    assert second.header("Vary") == "Accept-Encoding"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "name",
    [
        "missing.css",
        "css/",
        "",
        "../static-source/css/site.css",
        "css/../../static-source/css/site.css",
        "css/site.css\x00",
        "css\\site.css",
        "/etc/passwd",
        "a" * 300 + ".css",
        "a/" * 3000 + "b.css",
    ],
)
async def test_bad_or_missing_names_are_404(site: dict[str, Fetch], route: str, name: str) -> None:
    response = await site[route](name, headers=accept("gzip, br"))
    assert response.status == 404
    if name or route == "fast":  # Django's own 404 page for /static/, which no URL matches
        assert response.body == b"404 Not Found\n"


async def test_the_view_answers_get_and_head_only(site: dict[str, Fetch]) -> None:
    for method in ("POST", "PUT", "DELETE"):
        response = await site["django"]("plain.txt", method=method)
        assert response.status == 405
        assert response.header("Allow") == "GET, HEAD"
    head = await site["django"]("css/site.css", method="HEAD", headers=accept("gzip"))
    assert head.status == 200
    assert head.body == b""
    assert head.header("Content-Encoding") == "gzip"


async def test_the_same_answer_by_django_and_by_the_fast_path(
    site: dict[str, Fetch], tree: StaticTree
) -> None:
    cases: list[tuple[str, str, list[tuple[str, str]]]] = [
        ("GET", "css/site.css", accept("gzip, br")),
        ("GET", "css/site.css", accept("gzip")),
        ("HEAD", tree.hashed["js/app.js"], accept("gzip")),
        ("GET", "js/app.js", [*accept("gzip"), ("Range", "bytes=0-1,5-6")]),
        ("GET", "img/dot.png", [("Range", "bytes=-10")]),
        ("GET", "missing.txt", []),
    ]
    for method, name, headers in cases:
        django = await site["django"](name, method=method, headers=headers)
        fast = await site["fast"](name, method=method, headers=headers)
        assert (fast.status, fast.comparable_headers()) == (
            django.status,
            django.comparable_headers(),
        ), name
        assert masked_body(fast) == masked_body(django), name


def masked_body(response: Exchange) -> bytes:
    """The body with its random multipart boundary masked."""
    _, _, boundary = (response.header("Content-Type") or "").partition("boundary=")
    return response.body.replace(boundary.encode(), b"BOUNDARY") if boundary else response.body
