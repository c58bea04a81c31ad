"""The library's server side: ``sendfile(2)`` under uvicorn (asyncio and uvloop) and gunicorn.

Every live test of ``test_live.py`` also runs on ``gunicorn-sendfile`` and
``uvicorn-sendfile-asyncio`` (whole files, ranges, multipart, ``HEAD``,
``304``, keep-alive framing, 500 aborted downloads with the descriptors back
at their baseline). These tests add what is particular to sending from the
kernel: that ``sendfile`` really carries the bytes, keep-alive sequences and
pipelined requests mixing it with ordinary responses, a client with a tiny
receive buffer, a file replaced or truncated while it is sent, TLS (no
``sendfile``: the application sends its own bytes), the header timeout, and
another ASGI application (Starlette) using the extension.
"""

import hashlib
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from fileresponse.server.protocol import DEFAULT_HEADER_TIMEOUT, header_timeout_from_environment
from tests import rawhttp
from tests.servers import (
    REPO_ROOT,
    SENDFILE_SERVERS,
    LiveServer,
    MediaTree,
    ServerKind,
    ServerPool,
    free_port,
)

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("no_tracebacks_in_server_logs")]

N = 10 * 1024 * 1024


@pytest.fixture(scope="module", params=SENDFILE_SERVERS)
def sendfile_server(request: pytest.FixtureRequest, server_pool: ServerPool) -> LiveServer:
    return server_pool.get(request.param)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- the kernel sends the bytes


def _strace_sendfile(pid: int, run: Callable[[], None]) -> list[str]:
    """The ``sendfile`` calls of ``pid`` (all threads) while ``run()`` runs."""
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    out = Path(f"/tmp/fileresponse-strace-{pid}-{time.monotonic_ns()}")
    tracer = subprocess.Popen(
        ["strace", "-f", "-qq", "-e", "trace=sendfile", "-o", str(out), "-p", str(pid)],
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        if tracer.poll() is not None:
            pytest.skip(f"strace cannot attach to {pid} (ptrace not permitted?)")
        run()
        time.sleep(0.2)
    finally:
        tracer.terminate()
        tracer.wait(timeout=10)
    try:
        return [line for line in out.read_text().splitlines() if "sendfile(" in line]
    finally:
        out.unlink(missing_ok=True)


def _bytes_of(calls: list[str]) -> int:
    """The bytes the traced ``sendfile`` calls returned."""
    total = 0
    for line in calls:
        result = line.rpartition("=")[2].strip().split()[0]
        if result.lstrip("-").isdigit() and int(result) > 0:
            total += int(result)
    return total


def test_sendfile_carries_the_bytes(sendfile_server: LiveServer, media: MediaTree) -> None:
    server = sendfile_server
    responses: list[rawhttp.RawResponse] = []

    def download() -> None:
        responses.append(rawhttp.request(server.host, server.port, "GET", "/files/big.bin"))
        responses.append(
            rawhttp.request(
                server.host, server.port, "GET", "/files/big.bin", {"Range": "bytes=1000-2000999"}
            )
        )

    calls = _strace_sendfile(server.pid, download)
    whole, part = responses
    assert whole.status == 200
    assert sha(whole.body) == sha(media.files["big.bin"])
    assert part.status == 206
    assert part.body == media.files["big.bin"][1000:2001000]
    assert _bytes_of(calls) >= N + 2_000_000, calls[:5]
    assert any("[1000]" in line for line in calls), calls[:5]


def test_the_extensions_are_offered(sendfile_server: LiveServer) -> None:
    response = rawhttp.request(
        sendfile_server.host, sendfile_server.port, "GET", "/scope-extensions"
    )
    assert response.status == 200
    assert b'"http.response.pathsend", "http.response.zerocopysend"' in response.body


# ---------------------------------------------------------------- keep-alive and pipelining


def test_keep_alive_mixes_sendfile_and_ordinary_responses(
    sendfile_server: LiveServer, media: MediaTree
) -> None:
    server = sendfile_server
    big, small = media.files["big.bin"], media.files["small.txt"]
    with rawhttp.PersistentConnection(server.host, server.port) as connection:
        whole = connection.request("GET", "/files/big.bin")
        assert whole.status == 200
        assert sha(whole.body) == sha(big)
        etag = whole.header("ETag")
        assert connection.request("GET", "/files/missing.txt").status == 404
        assert connection.request("GET", "/scope-extensions").status == 200
        part = connection.request("GET", "/files/small.txt", {"Range": "bytes=5-24"})
        assert part.status == 206
        assert part.body == small[5:25]
        head = connection.request("HEAD", "/files/big.bin")
        assert head.status == 200
        assert head.header("Content-Length") == str(N)
        assert connection.request("GET", "/files/big.bin", {"If-None-Match": etag}).status == 304
        multi = connection.request("GET", "/files/big.bin", {"Range": "bytes=0-9,-10"})
        assert multi.status == 206
        assert big[:10] in multi.body
        assert big[-10:] in multi.body
        assert connection.request("GET", "/files/empty.txt").body == b""
        again = connection.request("GET", "/files/small.txt")
        assert again.body == small
        assert connection.pending() == b"", "bytes beyond the responses"


def test_pipelined_requests_are_answered_in_order(
    sendfile_server: LiveServer, media: MediaTree
) -> None:
    server = sendfile_server
    host = f"{server.host}:{server.port}"
    requests = [
        ("GET", "/files/big.bin", {}),
        ("HEAD", "/files/small.txt", {}),
        ("GET", "/files/big.bin", {"Range": "bytes=100-199"}),
        ("GET", "/files/missing.txt", {}),
        ("GET", "/files/small.txt", {}),
    ]
    payload = b"".join(
        rawhttp.build_request(method, target, host, {"Connection": "keep-alive", **headers})
        for method, target, headers in requests
    )
    with rawhttp.PersistentConnection(server.host, server.port) as connection:
        connection.send(payload)
        answers = [connection.read_response(method) for method, _, _ in requests]
        assert connection.pending() == b""
    assert [answer.status for answer in answers] == [200, 200, 206, 404, 200]
    assert sha(answers[0].body) == sha(media.files["big.bin"])
    assert answers[2].body == media.files["big.bin"][100:200]
    assert answers[4].body == media.files["small.txt"]


# ---------------------------------------------------------------- slow and tiny clients


def _slow_range(server: LiveServer, target: str, headers: dict[str, str]) -> tuple[bytes, bytes]:
    """GET through a socket with a 4 KiB receive buffer, read 1 KiB at a time: (head, body)."""
    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    connection.settimeout(30)
    with connection:
        connection.connect((server.host, server.port))
        connection.sendall(
            rawhttp.build_request("GET", target, f"{server.host}:{server.port}", headers)
        )
        data = bytearray()
        while chunk := connection.recv(1024):
            data += chunk
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return head, body


def test_a_tiny_receive_buffer_gets_every_byte_and_blocks_nobody(
    sendfile_server: LiveServer, media: MediaTree
) -> None:
    server = sendfile_server
    result: list[tuple[bytes, bytes]] = []
    slow = threading.Thread(
        target=lambda: result.append(
            _slow_range(server, "/files/big.bin", {"Range": "bytes=1000-1500999"})
        )
    )
    slow.start()
    try:
        time.sleep(0.2)
        started = time.monotonic()
        quick = rawhttp.request(server.host, server.port, "GET", "/files/small.txt")
        assert quick.status == 200
        assert time.monotonic() - started < 1.0, "a slow client held the event loop"
    finally:
        slow.join(timeout=60)
    head, body = result[0]
    assert head.startswith(b"HTTP/1.1 206")
    assert body == media.files["big.bin"][1000:1501000]


# ---------------------------------------------------------------- the file changes while sent


@pytest.fixture
def changing_file(sendfile_server: LiveServer) -> Iterator[tuple[Path, bytes]]:
    path = sendfile_server.media_root / f"changing-{sendfile_server.name}.bin"
    content = os.urandom(N)
    path.write_bytes(content)
    yield path, content
    path.unlink(missing_ok=True)


def _start_download(server: LiveServer, target: str) -> tuple[socket.socket, bytes]:
    """A GET whose reader has read its head and some body, then waits: (socket, bytes so far)."""
    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    connection.settimeout(30)
    connection.connect((server.host, server.port))
    connection.sendall(rawhttp.build_request("GET", target, f"{server.host}:{server.port}"))
    data = bytearray()
    while len(data) < 65536:
        data += connection.recv(65536)
    return connection, bytes(data)


def _finish(connection: socket.socket, data: bytes) -> bytes:
    received = bytearray(data)
    with connection:
        while chunk := connection.recv(1 << 20):
            received += chunk
    return bytes(received)


def test_a_file_replaced_while_sent_keeps_its_bytes(
    sendfile_server: LiveServer, changing_file: tuple[Path, bytes]
) -> None:
    path, content = changing_file
    etag = rawhttp.request(
        sendfile_server.host, sendfile_server.port, "HEAD", f"/files/{path.name}"
    ).header("ETag")
    connection, started = _start_download(sendfile_server, f"/files/{path.name}")
    replacement = path.with_suffix(".new")
    replacement.write_bytes(os.urandom(N))
    os.replace(replacement, path)
    response = rawhttp.parse_response(_finish(connection, started), "GET")
    assert response.header("ETag") == etag
    assert sha(response.body) == sha(content), "the bytes of another version"


def test_a_file_truncated_while_sent_is_cut_not_padded(
    sendfile_server: LiveServer, changing_file: tuple[Path, bytes]
) -> None:
    path, content = changing_file
    connection, started = _start_download(sendfile_server, f"/files/{path.name}")
    os.truncate(path, 1024 * 1024)
    raw = _finish(connection, started)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-length: %d" % N in head.lower()
    assert len(body) < N, "a truncated file cannot fill its Content-Length"
    # What lies before the new end is the file's; pages the kernel had queued
    # beyond it may read as zeros (as with nginx's sendfile): the response is
    # cut, so a client discards it. Replacing a file (rename) is the safe way.
    kept = body[: 1024 * 1024]
    assert content.startswith(kept), "bytes that were never in the file"
    deadline = time.monotonic() + 5
    while "response cut" not in (log := sendfile_server.log_tail()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "response cut" in log


# ---------------------------------------------------------------- TLS: no sendfile


@pytest.fixture(scope="module")
def tls_server(media: MediaTree, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    kind = ServerKind(
        "uvicorn-sendfile-tls",
        "patched",
        lambda port: [
            *(
                sys.executable,
                "-m",
                "fileresponse.server",
                "tests.project.asgi_patched:application",
            ),
            *("--host", "127.0.0.1", "--port", str(port), "--lifespan", "off"),
            *("--ssl-keyfile", str(key), "--ssl-certfile", str(cert), "--no-access-log"),
        ],
        serves_in_child=False,
    )
    server = LiveServer(kind, media, directory / "server.log", port=port)
    environ = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.project.settings",
        "FILERESPONSE_TEST_MEDIA_ROOT": str(media.root),
        "PYTHONPATH": str(REPO_ROOT),
    }
    with server.log_path.open("ab") as log:
        server.process = subprocess.Popen(
            kind.command(port), cwd=REPO_ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while _tls_get(port, "/__ready__") is None:
            assert server.process.poll() is None, server.log_tail()
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


def _tls_get(port: int, target: str, headers: dict[str, str] | None = None) -> bytes | None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
            context.wrap_socket(raw) as connection,
        ):
            connection.sendall(rawhttp.build_request("GET", target, "127.0.0.1", headers))
            data = bytearray()
            while chunk := connection.recv(1 << 20):
                data += chunk
            return bytes(data)
    except (OSError, ssl.SSLError):
        return None


def test_tls_falls_back_to_reads(tls_server: LiveServer, media: MediaTree) -> None:
    extensions = _tls_get(tls_server.port, "/scope-extensions")
    assert extensions is not None
    assert b'"extensions": []' in extensions
    whole = _tls_get(tls_server.port, "/files/big.bin")
    assert whole is not None
    assert sha(rawhttp.parse_response(whole, "GET").body) == sha(media.files["big.bin"])
    part = _tls_get(tls_server.port, "/files/big.bin", {"Range": "bytes=10-19,-5"})
    assert part is not None
    body = rawhttp.parse_response(part, "GET").body
    assert media.files["big.bin"][10:20] in body
    assert media.files["big.bin"][-5:] in body


# ---------------------------------------------------------------- the header timeout


def _closed_after(connection: socket.socket, dribble: bytes = b"") -> tuple[float, bytes]:
    """Send ``dribble`` a byte every 0.2 s (then nothing) until the server closes: (s, answer)."""
    started = time.monotonic()
    connection.settimeout(0.2)
    answer = bytearray()
    for byte in [dribble[i : i + 1] for i in range(len(dribble))] + [b""] * 50:
        try:
            if byte:
                connection.sendall(byte)
            chunk = connection.recv(4096)
        except TimeoutError:
            continue
        except ConnectionError:
            break
        if not chunk:
            break
        answer += chunk
    return time.monotonic() - started, bytes(answer)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("", DEFAULT_HEADER_TIMEOUT), ("2.5", 2.5), ("0", None), ("off", None), (" 7 ", 7.0)],
)
def test_the_header_timeout_from_the_environment(
    value: str, seconds: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FILERESPONSE_HEADER_TIMEOUT", value)
    assert header_timeout_from_environment() == seconds


@pytest.mark.parametrize("value", ["-1", "soon"])
def test_a_bad_header_timeout_is_an_error(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FILERESPONSE_HEADER_TIMEOUT", value)
    with pytest.raises(ValueError, match=r"FILERESPONSE_HEADER_TIMEOUT|could not convert"):
        header_timeout_from_environment()


@pytest.fixture(scope="module")
def timeout_server(server_pool: ServerPool) -> LiveServer:
    """``python -m fileresponse.server ... --header-timeout 1``."""
    return server_pool.get("uvicorn-sendfile-header-timeout")


def test_a_silent_connection_is_closed_with_408(timeout_server: LiveServer) -> None:
    with socket.create_connection((timeout_server.host, timeout_server.port)) as connection:
        elapsed, answer = _closed_after(connection)
    assert 0.8 < elapsed < 3.0
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_a_slowloris_head_is_closed(timeout_server: LiveServer) -> None:
    head = b"GET /files/small.txt HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 40
    with socket.create_connection((timeout_server.host, timeout_server.port)) as connection:
        elapsed, answer = _closed_after(connection, head)
    assert elapsed < 3.0, "a head sent a byte at a time kept the connection open"
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_a_head_in_time_is_served_and_kept_alive(
    timeout_server: LiveServer, media: MediaTree
) -> None:
    with rawhttp.PersistentConnection(timeout_server.host, timeout_server.port) as connection:
        assert connection.request("GET", "/files/small.txt").body == media.files["small.txt"]
        time.sleep(1.5)  # idle between requests: the keep-alive timeout's business
        assert connection.request("GET", "/files/small.txt").body == media.files["small.txt"]


def test_stock_uvicorn_keeps_a_slowloris_connection(server_pool: ServerPool) -> None:
    """What the header timeout changes: stock uvicorn waits for ever for the rest of the head."""
    stock = server_pool.get("uvicorn-patched")
    with socket.create_connection((stock.host, stock.port)) as connection:
        connection.sendall(b"GET /files/small.txt HTTP/1.1\r\nHost: x\r\n")
        connection.settimeout(2.0)
        with pytest.raises(TimeoutError):
            connection.recv(1)


# ---------------------------------------------------------------- any ASGI application


@pytest.fixture(scope="module")
def starlette_server(
    media: MediaTree, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    pytest.importorskip("starlette")
    kind = ServerKind(
        "starlette-sendfile",
        "patched",
        lambda port: [
            *(sys.executable, "-m", "fileresponse.server", "tests.starlette_app:app"),
            *("--host", "127.0.0.1", "--port", str(port), "--lifespan", "off"),
        ],
        serves_in_child=False,
    )
    server = LiveServer(kind, media, tmp_path_factory.mktemp("starlette") / "server.log")
    server.start()
    yield server
    server.stop()


def test_starlette_file_responses_use_pathsend(
    starlette_server: LiveServer, media: MediaTree
) -> None:
    server = starlette_server
    responses: list[rawhttp.RawResponse] = []
    calls = _strace_sendfile(
        server.pid,
        lambda: responses.append(
            rawhttp.request(server.host, server.port, "GET", "/files/big.bin")
        ),
    )
    assert responses[0].status == 200
    assert sha(responses[0].body) == sha(media.files["big.bin"])
    assert _bytes_of(calls) >= N


def test_no_descriptor_is_left_after_disconnects(sendfile_server: LiveServer) -> None:
    """Disconnects in the middle of ``sendfile`` close the socket's duplicate too."""
    server = sendfile_server
    process = psutil.Process(server.pid)
    rawhttp.request(server.host, server.port, "GET", "/files/small.txt")
    baseline = process.num_fds()
    for _ in range(100):
        connection = socket.create_connection((server.host, server.port))
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.sendall(rawhttp.build_request("GET", "/files/big.bin", "x"))
        connection.recv(1000)
        connection.close()  # SO_LINGER 0: a reset in the middle of the send
    deadline = time.monotonic() + 10
    while process.num_fds() > baseline + 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.num_fds() <= baseline + 3
    assert rawhttp.request(server.host, server.port, "GET", "/files/small.txt").status == 200
