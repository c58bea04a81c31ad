"""Real servers: bytes on the wire, ranges, preconditions, traversal, disconnects, memory.

Every server in :data:`tests.servers.SERVER_KINDS` runs the project in
``tests/project`` in a subprocess, once per session. Requests go over raw
sockets (:mod:`tests.rawhttp`) so that targets are sent as written and every
byte of the answer is seen.
"""

import asyncio
import re
import time
from pathlib import Path
from urllib.parse import quote, unquote

import psutil
import pytest

from tests import rawhttp
from tests.rawhttp import RawResponse
from tests.servers import (
    ALL_SERVERS,
    BIG_FILE_SIZE,
    NON_ASCII_NAME,
    SECRET_MARKER,
    LiveServer,
    MediaTree,
    ServerPool,
)

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("no_tracebacks_in_server_logs")]

N = BIG_FILE_SIZE
OLD_DATE = "Sat, 01 Jan 2000 00:00:00 GMT"


def fetch(
    server: LiveServer,
    target: str,
    headers: dict[str, str] | None = None,
    method: str = "GET",
) -> RawResponse:
    return rawhttp.request(server.host, server.port, method, target, headers)


def validators(server: LiveServer, target: str = "/files/small.txt") -> tuple[str, str]:
    """The ETag and Last-Modified of ``target``."""
    response = fetch(server, target)
    etag, last_modified = response.header("ETag"), response.header("Last-Modified")
    assert etag, response.headers
    assert last_modified, response.headers
    return etag, last_modified


# ---------------------------------------------------------------- whole files


@pytest.mark.parametrize(
    ("relative", "content_type"),
    [
        ("big.bin", "application/octet-stream"),
        ("small.txt", "text/plain; charset=utf-8"),
        (NON_ASCII_NAME, "text/plain; charset=utf-8"),
        ("nested/dir/deep.txt", "text/plain; charset=utf-8"),
        ("empty.txt", "text/plain; charset=utf-8"),
    ],
)
def test_get_sends_the_whole_file(
    server: LiveServer, media: MediaTree, relative: str, content_type: str
) -> None:
    response = fetch(server, "/files/" + quote(relative))

    content = media.files[relative]
    assert response.status == 200
    assert response.body == content
    assert response.header("Content-Length") == str(len(content))
    assert response.header("Content-Type") == content_type
    assert response.header("Accept-Ranges") == "bytes"
    assert response.header("ETag")
    assert response.header("Last-Modified")


def test_head_sends_headers_and_no_body(server: LiveServer, media: MediaTree) -> None:
    get = fetch(server, "/files/big.bin")
    head = fetch(server, "/files/big.bin", method="HEAD")

    assert head.status == 200
    assert head.wire_body == b""
    assert head.header("Content-Length") == str(N)
    for name in ("Content-Type", "ETag", "Last-Modified", "Accept-Ranges"):
        assert head.header(name) == get.header(name), name


def test_django_file_response_is_served(server: LiveServer, media: MediaTree) -> None:
    """The harness itself: Django's own ``FileResponse`` goes through every server."""
    response = fetch(server, "/stock/big.bin")

    assert response.status == 200
    assert response.body == media.files["big.bin"]


def test_keep_alive_framing(asgi_server: LiveServer, media: MediaTree) -> None:
    """Responses of every kind on one connection, each read by its own framing.

    The WSGI server is left out: gunicorn's sync worker closes every connection.
    """
    content = media.files["big.bin"]
    with rawhttp.PersistentConnection(asgi_server.host, asgi_server.port) as connection:
        head = connection.request("HEAD", "/files/big.bin")
        etag = head.header("ETag") or ""
        not_modified = connection.request("GET", "/files/big.bin", {"If-None-Match": etag})
        failed = connection.request("GET", "/files/big.bin", {"If-Match": '"nope"'})
        unsatisfiable = connection.request("GET", "/files/big.bin", {"Range": f"bytes={N}-"})
        part = connection.request("GET", "/files/big.bin", {"Range": "bytes=10-19"})
        parts = connection.request("GET", "/files/big.bin", {"Range": "bytes=0-1,5-6"})
        whole = connection.request("GET", "/files/big.bin")
        missing = connection.request("GET", "/files/missing.txt")
        last = connection.request("GET", "/files/small.txt")
        leftover = connection.pending()

    assert [
        response.status
        for response in (head, not_modified, failed, unsatisfiable, part, parts, whole, missing)
    ] == [200, 304, 412, 416, 206, 206, 200, 404]
    assert part.body == content[10:20]
    assert [data for _, _, data in parse_byteranges(parts)] == [content[0:2], content[5:7]]
    assert whole.body == content
    assert last.body == media.files["small.txt"]
    assert leftover == b""


@pytest.mark.parametrize(
    "target", ["/files/missing.txt", "/files/nested", "/files/nested/", "/files/nested/dir/"]
)
def test_missing_files_and_directories_are_404(server: LiveServer, target: str) -> None:
    assert fetch(server, target).status == 404


# ---------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=-100", N - 100, N - 1),
        ("bytes=100-", 100, N - 1),
        (f"bytes={N - 50}-{N + 1000}", N - 50, N - 1),
        ("bytes=5000000-5000000", 5_000_000, 5_000_000),
    ],
    ids=["first-100", "suffix-100", "from-100", "end-past-eof", "one-byte"],
)
def test_single_range(
    server: LiveServer, media: MediaTree, range_header: str, first: int, last: int
) -> None:
    response = fetch(server, "/files/big.bin", {"Range": range_header})

    assert response.status == 206
    assert response.header("Content-Range") == f"bytes {first}-{last}/{N}"
    assert response.header("Content-Length") == str(last - first + 1)
    assert response.body == media.files["big.bin"][first : last + 1]


@pytest.mark.parametrize(
    "range_header", ["bytes=0-", f"bytes=-{N}", f"bytes=-{N + 5}", f"bytes=0-{N + 5}"]
)
def test_range_covering_the_whole_file_is_a_206(
    server: LiveServer, media: MediaTree, range_header: str
) -> None:
    """As nginx answers: download managers ask ``bytes=0-`` to learn that they can resume."""
    response = fetch(server, "/files/big.bin", {"Range": range_header})

    assert response.status == 206
    assert response.header("Content-Range") == f"bytes 0-{N - 1}/{N}"
    assert response.header("Content-Length") == str(N)
    assert response.body == media.files["big.bin"]


def test_whole_file_range_with_a_stale_if_range_is_a_200(
    server: LiveServer, media: MediaTree
) -> None:
    response = fetch(server, "/files/big.bin", {"Range": "bytes=0-", "If-Range": '"stale"'})

    assert response.status == 200
    assert response.header("Content-Range") is None
    assert response.body == media.files["big.bin"]


def parse_byteranges(response: RawResponse) -> list[tuple[str, str | None, bytes]]:
    """The parts of a ``multipart/byteranges`` body: (Content-Range, Content-Type, bytes)."""
    content_type = response.header("Content-Type") or ""
    match = re.fullmatch(r'multipart/byteranges;\s*boundary="?([^";]+)"?', content_type)
    assert match, content_type
    delimiter = b"\r\n--" + match[1].encode("latin-1")
    segments = (b"\r\n" + response.body).split(delimiter)
    assert segments[0] == b"", segments[0][:100]
    assert segments[-1].startswith(b"--"), segments[-1][:100]
    parts = []
    for segment in segments[1:-1]:
        head, separator, data = segment.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        assert separator, segment[:200]
        fields = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in head.decode().split("\r\n"))
        }
        parts.append((fields["content-range"], fields.get("content-type"), data))
    return parts


def test_multiple_ranges_are_multipart(server: LiveServer, media: MediaTree) -> None:
    content = media.files["big.bin"]

    response = fetch(server, "/files/big.bin", {"Range": "bytes=0-9,100-199,-10"})

    assert response.status == 206
    assert response.header("Content-Range") is None
    assert parse_byteranges(response) == [
        (f"bytes 0-9/{N}", "application/octet-stream", content[:10]),
        (f"bytes 100-199/{N}", "application/octet-stream", content[100:200]),
        (f"bytes {N - 10}-{N - 1}/{N}", "application/octet-stream", content[-10:]),
    ]


def test_parts_come_in_the_order_of_the_request(server: LiveServer, media: MediaTree) -> None:
    """RFC 9110 section 15.3.7.2; a merged range is where the first of its ranges was."""
    content = media.files["big.bin"]

    response = fetch(server, "/files/big.bin", {"Range": "bytes=-10,500-599,0-9,550-649"})

    assert response.status == 206
    assert parse_byteranges(response) == [
        (f"bytes {N - 10}-{N - 1}/{N}", "application/octet-stream", content[-10:]),
        (f"bytes 500-649/{N}", "application/octet-stream", content[500:650]),
        (f"bytes 0-9/{N}", "application/octet-stream", content[:10]),
    ]


def test_multipart_larger_than_the_file_is_the_whole_file(
    server: LiveServer, media: MediaTree
) -> None:
    content = media.files["nested/dir/deep.txt"]

    response = fetch(server, "/files/nested/dir/deep.txt", {"Range": "bytes=0-0,2-2,4-4"})

    assert response.status == 200
    assert response.header("Content-Type") == "text/plain; charset=utf-8"
    assert response.header("Content-Length") == str(len(content))
    assert response.body == content


def test_overlapping_ranges_are_coalesced(server: LiveServer, media: MediaTree) -> None:
    response = fetch(server, "/files/big.bin", {"Range": "bytes=50-149,0-99,150-199"})

    assert response.status == 206
    assert response.header("Content-Range") == f"bytes 0-199/{N}"
    assert response.body == media.files["big.bin"][:200]


@pytest.mark.parametrize(
    ("relative", "range_header"),
    [
        ("big.bin", f"bytes={N}-"),
        ("big.bin", f"bytes={N + 10}-{N + 20}"),
        ("big.bin", f"bytes={N}-,{N + 5}-"),
        ("empty.txt", "bytes=0-"),
    ],
)
def test_unsatisfiable_range_is_416(
    server: LiveServer, media: MediaTree, relative: str, range_header: str
) -> None:
    response = fetch(server, "/files/" + relative, {"Range": range_header})

    assert response.status == 416
    assert response.header("Content-Range") == f"bytes */{len(media.files[relative])}"


@pytest.mark.parametrize(
    "range_header",
    [
        "bytes=abc",
        "bytes=",
        "items=0-10",
        "bytes=10-5",
        "0-10",
        "bytes=0-1,x",
        "bytes=" + ",".join(f"{n * 10}-{n * 10 + 1}" for n in range(17)),
    ],
    ids=["letters", "empty-set", "other-unit", "last-before-first", "no-unit", "bad-member", "17"],
)
def test_malformed_range_is_ignored(
    server: LiveServer, media: MediaTree, range_header: str
) -> None:
    response = fetch(server, "/files/small.txt", {"Range": range_header})

    assert response.status == 200
    assert response.header("Content-Range") is None
    assert response.body == media.files["small.txt"]


# ---------------------------------------------------------------- preconditions


def test_if_none_match_with_the_etag_is_304(server: LiveServer) -> None:
    etag, _ = validators(server)

    response = fetch(server, "/files/small.txt", {"If-None-Match": etag})

    assert response.status == 304
    assert response.header("ETag") == etag
    assert response.wire_body == b""


@pytest.mark.parametrize(
    ("header", "value", "status"),
    [
        ("If-None-Match", '"other", {etag}', 304),
        ("If-None-Match", "W/{etag}", 304),
        ("If-None-Match", "*", 304),
        ("If-None-Match", '"other"', 200),
        ("If-Modified-Since", "{last_modified}", 304),
        ("If-Modified-Since", OLD_DATE, 200),
        ("If-Modified-Since", "not a date", 200),
        ("If-Match", '"mismatch"', 412),
        ("If-Match", "{etag}", 200),
        ("If-Match", "*", 200),
        ("If-Unmodified-Since", OLD_DATE, 412),
        ("If-Unmodified-Since", "{last_modified}", 200),
    ],
)
def test_preconditions(server: LiveServer, header: str, value: str, status: int) -> None:
    etag, last_modified = validators(server)

    response = fetch(
        server,
        "/files/small.txt",
        {header: value.format(etag=etag, last_modified=last_modified)},
    )

    assert response.status == status
    if status != 200:
        assert response.wire_body == b""


def test_if_none_match_wins_over_if_modified_since(server: LiveServer) -> None:
    _, last_modified = validators(server)

    response = fetch(
        server,
        "/files/small.txt",
        {"If-None-Match": '"other"', "If-Modified-Since": last_modified},
    )

    assert response.status == 200


@pytest.mark.parametrize(
    ("if_range", "status"),
    [("{etag}", 206), ('"stale"', 200), ("W/{etag}", 200), (OLD_DATE, 200)],
    ids=["current-etag", "stale-etag", "weak-etag", "old-date"],
)
def test_if_range(server: LiveServer, media: MediaTree, if_range: str, status: int) -> None:
    etag, _ = validators(server, "/files/big.bin")

    response = fetch(
        server,
        "/files/big.bin",
        {"Range": "bytes=0-99", "If-Range": if_range.format(etag=etag)},
    )

    assert response.status == status
    expected = media.files["big.bin"][:100] if status == 206 else media.files["big.bin"]
    assert response.body == expected


# ---------------------------------------------------------------- Content-Disposition


def test_attachment_with_a_non_ascii_name(server: LiveServer, media: MediaTree) -> None:
    response = fetch(server, "/attachment/" + quote(NON_ASCII_NAME))

    assert response.status == 200
    assert response.body == media.files[NON_ASCII_NAME]
    disposition = response.header("Content-Disposition") or ""
    assert disposition.startswith("attachment"), disposition
    match = re.search(r"filename\*=(?i:utf-8)''([^;\s]+)", disposition)
    assert match, disposition
    assert unquote(match[1]) == NON_ASCII_NAME
    assert 'filename="resume ___.txt";' in disposition  # a readable ASCII fallback


def test_attachment_with_an_ascii_name(server: LiveServer) -> None:
    response = fetch(server, "/attachment/small.txt")

    assert response.status == 200
    assert response.header("Content-Disposition") == 'attachment; filename="small.txt"'


# ---------------------------------------------------------------- traversal

TRAVERSALS = [
    "/files/../outside/secret.txt",
    "/files/nested/../../outside/secret.txt",
    "/files/%2e%2e/outside/secret.txt",
    "/files/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
    "/files/.%2e/outside/secret.txt",
    "/files/..%2foutside%2fsecret.txt",
    "/files/%2e%2e%2foutside%2fsecret.txt",
    "/files/nested/dir/%2e%2e/%2e%2e/%2e%2e/outside/secret.txt",
    "/files/%252e%252e/outside/secret.txt",
    "/files/..%5coutside%5csecret.txt",
    "/files/..\\outside\\secret.txt",
    "/files//etc/passwd",
    "/files/%2fetc%2fpasswd",
    "/files/{outside}/secret.txt",
    "/files/{outside_encoded}%2fsecret.txt",
    "/files/small.txt%00",
    "/files/small.txt%00.png",
    "/files/%00",
    "/files/escape.txt",
    "/files/escape_dir/secret.txt",
    "/files/C:%5cWindows%5cwin.ini",
    "/files/C:/Windows/win.ini",
    "/attachment/%2e%2e/outside/secret.txt",
    "/attachment/escape.txt",
    "/attachment/small.txt%00",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_never_serves_content(server: LiveServer, media: MediaTree, target: str) -> None:
    outside = media.outside.as_posix()
    response = fetch(
        server,
        target.format(outside=outside, outside_encoded=quote(outside, safe="")),
    )

    assert response.status in (400, 404), (response.status, response.body[:300])
    assert SECRET_MARKER not in response.wire_body
    assert b"root:" not in response.wire_body


# ---------------------------------------------------------------- same answer everywhere

HOP_BY_HOP_AND_SERVER = ("date", "server", "connection", "keep-alive", "transfer-encoding")

SAME_ANSWER_CASES = [
    ("GET", "/files/small.txt", {}),
    ("HEAD", "/files/small.txt", {}),
    ("GET", "/files/empty.txt", {}),
    ("GET", "/files/" + quote(NON_ASCII_NAME), {}),
    ("GET", "/files/big.bin", {"Range": "bytes=0-99"}),
    ("GET", "/files/big.bin", {"Range": "bytes=-100"}),
    ("GET", "/files/big.bin", {"Range": "bytes=0-9,100-199,-10"}),
    ("GET", "/files/big.bin", {"Range": "bytes=-10,100-199,0-9"}),
    ("GET", "/files/big.bin", {"Range": "bytes=0-"}),
    ("GET", "/files/nested/dir/deep.txt", {"Range": "bytes=0-0,2-2,4-4"}),
    ("HEAD", "/files/big.bin", {"Range": "bytes=0-9,100-199"}),
    ("GET", "/files/big.bin", {"Range": f"bytes={N}-"}),
    ("GET", "/files/small.txt", {"Range": "bytes=abc"}),
    ("GET", "/files/small.txt", {"If-None-Match": "{etag}"}),
    ("GET", "/files/small.txt", {"If-Modified-Since": "{last_modified}"}),
    ("GET", "/files/small.txt", {"If-Match": '"mismatch"'}),
    ("GET", "/files/small.txt", {"If-Unmodified-Since": OLD_DATE}),
    ("GET", "/files/small.txt", {"Range": "bytes=0-9", "If-Range": "{etag}"}),
    ("GET", "/files/small.txt", {"Range": "bytes=0-9", "If-Range": '"stale"'}),
    ("GET", "/attachment/" + quote(NON_ASCII_NAME), {}),
    ("GET", "/files/missing.txt", {}),
    ("GET", "/files/nested/", {}),
    ("GET", "/files/%2e%2e/outside/secret.txt", {}),
    ("POST", "/files/small.txt", {"Content-Length": "0"}),
]


def normalised(response: RawResponse) -> tuple[int, dict[str, str], bytes]:
    """Status, headers without the server's own, body with the multipart boundary masked.

    Servers frame a body the application sent without ``Content-Length`` in
    their own way (chunked, or a length they add), so a ``Content-Length``
    that only restates the body length is left to the body comparison.
    """
    headers = response.header_map(exclude=HOP_BY_HOP_AND_SERVER)
    body = response.body
    if headers.get("content-length") == str(len(body)):
        del headers["content-length"]
    match = re.search(r"boundary=\"?([^\";]+)", headers.get("content-type", ""))
    if match:
        headers["content-type"] = headers["content-type"].replace(match[1], "BOUNDARY")
        body = body.replace(match[1].encode("latin-1"), b"BOUNDARY")
    return response.status, headers, body


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    SAME_ANSWER_CASES,
    ids=[f"{method} {target} {headers}" for method, target, headers in SAME_ANSWER_CASES],
)
def test_same_answer_on_every_server(
    server_pool: ServerPool, method: str, target: str, headers: dict[str, str]
) -> None:
    answers = {}
    for name in ALL_SERVERS:
        running = server_pool.get(name)
        etag, last_modified = validators(running)
        filled = {
            key: value.format(etag=etag, last_modified=last_modified)
            for key, value in headers.items()
        }
        answers[name] = normalised(fetch(running, target, filled, method=method))

    reference_name = "uvicorn-patched"
    reference = answers[reference_name]
    for name, answer in answers.items():
        assert answer[0] == reference[0], f"status: {name} {answer[0]} vs {reference[0]}"
        assert answer[1] == reference[1], f"headers: {name} vs {reference_name}"
        assert answer[2] == reference[2], f"body: {name} vs {reference_name}"


# ---------------------------------------------------------------- disconnects and memory

ABORTED_DOWNLOADS = 500
CONCURRENT_ABORTS = 50
SETTLE_TIMEOUT = 10.0
FD_SLACK = 3


def media_files_open(process: psutil.Process, root: Path) -> list[str]:
    roots = (str(root), str(root.resolve()))
    return [item.path for item in process.open_files() if item.path.startswith(roots)]


async def wait_for_fds(process: psutil.Process, root: Path, baseline: int) -> tuple[int, list[str]]:
    """Poll until the fd count is back near ``baseline`` and no media file is open."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        fds, open_media = process.num_fds(), media_files_open(process, root)
        if (fds <= baseline + FD_SLACK and not open_media) or time.monotonic() > deadline:
            return fds, open_media
        await asyncio.sleep(0.1)


async def test_aborted_downloads_release_their_files(asgi_server: LiveServer) -> None:
    """Cancelled downloads close their files and stop reading them.

    The WSGI server is left out: its sync worker serves one connection at a time.
    """
    server = asgi_server
    process = psutil.Process(server.pid)
    received = await rawhttp.adownload_and_discard(server.host, server.port, "/files/big.bin")
    assert received > N
    baseline = process.num_fds()
    assert media_files_open(process, server.media_root) == []
    read_before = process.io_counters().read_chars

    requests = [
        ("/files/big.bin", {}),
        ("/files/big.bin", {"Range": "bytes=1000-"}),
        ("/files/big.bin", {"Range": "bytes=0-99,1000-"}),
        ("/attachment/big.bin", {}),
    ]
    limit = asyncio.Semaphore(CONCURRENT_ABORTS)
    peak = baseline

    async def abort(number: int) -> int:
        nonlocal peak
        target, headers = requests[number % len(requests)]
        async with limit:
            got = await rawhttp.aabort_download(server.host, server.port, target, headers)
            peak = max(peak, process.num_fds())
            return got

    async with asyncio.timeout(60):
        got = await asyncio.gather(*(abort(number) for number in range(ABORTED_DOWNLOADS)))
    assert min(got) > 0

    fds, open_media = await wait_for_fds(process, server.media_root, baseline)
    summary = (
        f"{server.name}: {fds} fds (baseline {baseline}, peak {peak}), "
        f"{len(open_media)} media files still open: {open_media[:5]}"
    )
    assert fds <= baseline + FD_SLACK, summary
    assert not open_media, summary
    # A server may fill the socket buffers before it sees the reset, but it
    # must not go on reading the rest of each file for nobody.
    read_per_download = (process.io_counters().read_chars - read_before) / ABORTED_DOWNLOADS
    assert read_per_download < N / 2, (
        f"{server.name}: read {read_per_download / 2**20:.1f} MiB per aborted download"
    )
    assert fetch(server, "/files/small.txt").status == 200


CONCURRENT_DOWNLOADS = 20
RSS_GROWTH_LIMIT = 64 * 1024 * 1024


async def test_memory_stays_bounded_under_concurrent_downloads(
    patched_server: LiveServer,
) -> None:
    server = patched_server
    process = psutil.Process(server.pid)
    await rawhttp.adownload_and_discard(server.host, server.port, "/files/big.bin")
    baseline = process.memory_info().rss
    peak = baseline
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    try:
        async with asyncio.timeout(60):
            received = await asyncio.gather(
                *(
                    rawhttp.adownload_and_discard(server.host, server.port, "/files/big.bin")
                    for _ in range(CONCURRENT_DOWNLOADS)
                )
            )
    finally:
        done.set()
        await sampler
    peak = max(peak, process.memory_info().rss)

    assert all(count > N for count in received)
    growth = peak - baseline
    assert growth < RSS_GROWTH_LIMIT, (
        f"{server.name}: RSS grew by {growth / 2**20:.1f} MiB (baseline {baseline / 2**20:.1f} MiB)"
    )
