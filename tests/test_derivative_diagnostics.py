"""Cache-Status and Server-Timing through real servers: the same under every handler.

uvicorn with the library's handler and with Django's stock ``ASGIHandler``, and
gunicorn's sync WSGI workers, serve one site (tests.derivatives_site) and one
derivative store; each server makes its own derivative (a spec of its own), so
its first answer is a miss and the next ones are hits. The log line of each
derivative made is read from the server's log.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

pytest.importorskip("PIL")

from fileresponse.derivatives.signing import signed_path
from fileresponse.derivatives.spec import parse_spec
from tests import images, rawhttp
from tests.fields import description, milliseconds, outcome_of
from tests.servers import SERVER_KINDS, LiveServer, MediaTree

pytestmark = [pytest.mark.live]

HANDLERS = ["uvicorn-patched", "uvicorn-stock", "gunicorn-wsgi"]
SOURCE = "photos/diagnosed.jpg"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LiveServer]]:
    """A server of each handler, and one with the headers off, on one media tree and store."""
    root = tmp_path_factory.mktemp("diagnostics")
    media, outside = root / "media", root / "outside"
    (media / "photos").mkdir(parents=True)
    outside.mkdir()
    (media / SOURCE).write_bytes(images.jpeg((800, 600)))
    tree = MediaTree(root=media, outside=outside, files={})
    servers: dict[str, LiveServer] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_SETTINGS_MODULE", "tests.derivatives_site.settings")
        patch.setenv("FILERESPONSE_TEST_DERIVATIVES_ROOT", str(root / "derivatives"))
        patch.setenv("FILERESPONSE_TEST_LOCK_DIR", str(root / "locks"))
        try:
            for name in HANDLERS:
                servers[name] = LiveServer(SERVER_KINDS[name], tree, root / f"{name}.log")
                servers[name].start()
            patch.setenv("FILERESPONSE_TEST_SETTINGS", '{"DERIVATIVES_DIAGNOSTIC_HEADERS": false}')
            servers["off"] = LiveServer(SERVER_KINDS["uvicorn-patched"], tree, root / "off.log")
            servers["off"].start()
            yield servers
        finally:
            for server in servers.values():
                server.stop()


def get(
    server: LiveServer, path: str, headers: dict[str, str] | None = None
) -> rawhttp.RawResponse:
    return rawhttp.request(server.host, server.port, "GET", path, headers or {})


def url(width: int) -> str:
    return "/derivatives/" + signed_path(SOURCE, parse_spec(f"{width}x{width} fill webp"))


@pytest.mark.parametrize("name", HANDLERS)
def test_a_miss_then_hits(site: dict[str, LiveServer], name: str) -> None:
    server = site[name]
    width = 100 + 10 * HANDLERS.index(name)
    miss = get(server, url(width))
    assert miss.status == 200, server.log_tail()
    assert images.decode(miss.body).size == (width, width)
    assert outcome_of(miss.header) == "miss"
    assert description(miss.header, "process") == "image"
    assert milliseconds(miss.header, "process") > 0
    hit = get(server, url(width))
    assert outcome_of(hit.header) == "hit"
    assert hit.body == miss.body
    etag = hit.header("ETag") or ""
    for headers, status in (({"If-None-Match": etag}, 304), ({"Range": "bytes=0-9"}, 206)):
        answer = get(server, url(width), headers)
        assert answer.status == status
        assert outcome_of(answer.header) == "hit"
    assert hit.header("Timing-Allow-Origin") is None
    (line,) = [line for line in server.log_tail(100_000).splitlines() if "generated " in line]
    assert re.search(
        rf"generated \S+/{width}x{width}_fill\.webp in [0-9.]+ ms \(.+, {len(miss.body)} bytes\) "
        rf"from 'default:{SOURCE}' by '{width}x{width} fill webp'",
        line,
    ), line


def test_every_handler_says_the_same(site: dict[str, LiveServer]) -> None:
    """Each server's hit of every server's derivative: one Cache-Status, the same metrics."""
    for width in (100 + 10 * index for index in range(len(HANDLERS))):
        get(site[HANDLERS[0]], url(width))  # made, whichever test ran first
        answers = [get(site[name], url(width)) for name in HANDLERS]
        assert {answer.header("Cache-Status") for answer in answers} == {"fileresponse; hit"}
        timings = {
            re.sub(r"dur=[0-9.]+", "dur=N", answer.header("Server-Timing") or "")
            for answer in answers
        }
        assert timings == {"lookup;dur=N"}


def test_switched_off(site: dict[str, LiveServer]) -> None:
    server = site["off"]
    for answer in (get(server, url(300)), get(server, url(300))):
        assert answer.status == 200
        assert answer.header("Cache-Status") is None
        assert answer.header("Server-Timing") is None
    assert "generated " in server.log_tail(100_000), "the log line stays"
