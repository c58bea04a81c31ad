#!/usr/bin/env python3
"""Load on the real servers of the test suite: slow clients, and many connections at once.

  python bench/load.py slow-clients   # 200 clients reading 1 byte/s of a 10 MiB file for 20 s,
                                      # against uvicorn, gunicorn + uvicorn workers and granian;
                                      # meanwhile a paced client times a small file
  python bench/load.py connections    # 500 keep-alive connections for 60 s against gunicorn +
                                      # uvicorn workers: files, ranges, multipart, derivative hits

The servers are those of tests/servers.py, running the test project (tests/derivatives_site:
tests/project plus derivatives) on a generated media tree, one worker each, on 127.0.0.1.
Clients are asyncio on raw sockets in this process (uvloop when installed).

slow-clients: each client sets SO_RCVBUF to 1 KiB, sends a GET and then reads one byte a
second. Once the server has answered them all and idles, a paced client GETs small.txt
(--small-rate a second, a fresh connection each) for --duration s: its p50/p99/max. Also
the RSS of the serving process before / peak (sampled every 0.2 s) / after, and its open
descriptors before / peak / after the slow clients close (and how soon they settle).

connections: the derivatives are made and fetched twice first, so the load only hits the
cache (the server's log must show no "generated" record during it). Each connection sends
its requests one after another (keep-alive) for --duration s: whole files (1 KiB to 1 MiB),
single ranges, three-part multipart ranges, 304 revalidations, derivative URLs. Every
response is checked (status, and the exact bytes, part by part for multipart): any
difference is an error. Figures: requests/s, p50/p99/max (overall and per kind), RSS and
descriptors as above. Exit code 1 when there were errors.

Output: a table on stdout, and bench/results/load-<name>.json and .md (--out to change).
The tests in tests/test_load.py run both, shorter, and assert bounds on the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import random
import re
import resource
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests import rawhttp  # noqa: E402
from tests.servers import (  # noqa: E402
    NON_ASCII_NAME,
    SERVER_KINDS,
    LiveServer,
    MediaTree,
    build_media_tree,
)

MiB = 1024 * 1024
SLOW_SERVERS = ("uvicorn-patched", "gunicorn-uvicorn", "granian")
CONNECTIONS_SERVER = "gunicorn-uvicorn"
DERIVATIVE_SPECS = ("320x240 fill webp q=70", "200x fit jpeg q=80", "64x64 crop png")
DERIVATIVE_SOURCE = "photos/load.jpg"
MEDIUM_FILE = "load/medium.bin"
GENERATED = re.compile(r"generated (\S+) in [0-9.]+ ms")
#: Idle seconds after which gunicorn (``keepalive`` 2 s) may close a keep-alive connection.
STALE_AFTER = 1.5


# ---------------------------------------------------------------- the site and its servers


@dataclass(frozen=True)
class Site:
    """The media tree of the runs and the environment of their servers."""

    media: MediaTree
    environ: dict[str, str]
    logs: Path


def build_site(base: Path) -> Site:
    """The suite's media tree, plus a 1 MiB file and a JPEG source for derivatives."""
    media = build_media_tree(base)
    files = dict(media.files)
    medium = random.Random(7).randbytes(MiB)
    (media.root / MEDIUM_FILE).parent.mkdir(parents=True, exist_ok=True)
    (media.root / MEDIUM_FILE).write_bytes(medium)
    files[MEDIUM_FILE] = medium
    from tests import images

    (media.root / DERIVATIVE_SOURCE).parent.mkdir(parents=True, exist_ok=True)
    (media.root / DERIVATIVE_SOURCE).write_bytes(images.jpeg((1600, 1200)))
    logs = base / "logs"
    logs.mkdir()
    environ = {
        "DJANGO_SETTINGS_MODULE": "tests.derivatives_site.settings",
        "FILERESPONSE_TEST_DERIVATIVES_ROOT": str(base / "derivatives"),
        "FILERESPONSE_TEST_LOCK_DIR": str(base / "locks"),
    }
    return Site(MediaTree(media.root, media.outside, files), environ, logs)


@contextlib.contextmanager
def running_server(site: Site, name: str) -> Iterator[LiveServer]:
    """Server ``name`` on the site (its environment set while it starts), stopped on exit."""
    saved = {key: os.environ.get(key) for key in site.environ}
    os.environ.update(site.environ)
    server = LiveServer(SERVER_KINDS[name], site.media, site.logs / f"{name}.log")
    try:
        server.start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        yield server
    finally:
        server.stop()


def raise_fd_limit(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE to ``needed`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return soft


# ---------------------------------------------------------------- measuring the server


class ProcessProbe:
    """RSS and open descriptors of the serving process (and RSS of its tree), every 0.2 s."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak_rss = 0
        self.peak_tree_rss = 0
        self.peak_fds = 0
        self.samples = 0
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return int(self.process.memory_info().rss)

    def fds(self) -> int:
        return int(self.process.num_fds())

    def tree_rss(self) -> int:
        total = self.rss()
        for child in self.process.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += child.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._halt.wait(self.interval):
            with contextlib.suppress(psutil.NoSuchProcess):
                self.peak_rss = max(self.peak_rss, self.rss())
                self.peak_tree_rss = max(self.peak_tree_rss, self.tree_rss())
                self.peak_fds = max(self.peak_fds, self.fds())
                self.samples += 1

    def __enter__(self) -> ProcessProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._halt.set()
        self._thread.join(timeout=5)

    def wait_for_fds(self, limit: int, timeout: float) -> float | None:
        """Seconds until the process holds at most ``limit`` descriptors, or None after
        ``timeout``."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.fds() <= limit:
                return round(time.monotonic() - start, 2)
            time.sleep(0.1)
        return None


def mib(value: float) -> float:
    return round(value / MiB, 1)


def percentile(values: list[float], rank: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, -(-int(rank * len(ordered)) // 100) - 1))
    return ordered[index]


def latency_summary(seconds: list[float]) -> dict[str, float | None]:
    millis = [value * 1000 for value in seconds]
    return {
        "p50_ms": _round(percentile(millis, 50)),
        "p99_ms": _round(percentile(millis, 99)),
        "max_ms": _round(max(millis, default=None)),
    }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


async def warm_up(server: LiveServer) -> None:
    """A few requests, so that lazy imports and first-use caches are behind the baseline."""
    for _ in range(20):
        await rawhttp.arequest(server.host, server.port, "GET", "/files/small.txt")
    await rawhttp.arequest(
        server.host, server.port, "GET", "/files/big.bin", {"Range": "bytes=0-99,200-299"}
    )
    await rawhttp.adownload_and_discard(server.host, server.port, "/files/big.bin")


# ---------------------------------------------------------------- slow clients


@dataclass
class SlowStats:
    connected: int = 0
    connect_errors: int = 0
    started: int = 0
    """Clients that received a first byte: the server has begun their responses."""
    bytes_read: int = 0
    closed_by_server: int = 0
    open_at_end: int = 0
    quiet_after_s: float | None = None
    """Seconds from the last first byte until the server idled (below 30 % of a core)."""


async def _until_idle(pid: int, limit: float = 30.0, max_wait: float = 5.0) -> float | None:
    """Seconds until process ``pid`` uses less than ``limit`` % of a core, or None."""
    process = psutil.Process(pid)
    start = time.monotonic()
    process.cpu_percent()
    while time.monotonic() - start < max_wait:
        await asyncio.sleep(0.25)
        if process.cpu_percent() < limit:
            return round(time.monotonic() - start, 2)
    return None


async def _slow_reader(
    server: LiveServer,
    target: str,
    done: asyncio.Event,
    max_seconds: float,
    receive_buffer: int,
    stats: SlowStats,
) -> None:
    """Read ``target`` one byte a second, with a tiny receive buffer, until ``done``."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (server.host, server.port)), 10)
            request = rawhttp.build_request("GET", target, f"{server.host}:{server.port}")
            await asyncio.wait_for(loop.sock_sendall(sock, request), 10)
        except (OSError, TimeoutError):
            stats.connect_errors += 1
            return
        stats.connected += 1
        for second in range(int(max_seconds) + 1):
            try:
                data = await asyncio.wait_for(loop.sock_recv(sock, 1), 10)
            except TimeoutError:
                break  # nothing for 10 s: stalled, but still open
            except OSError:
                stats.closed_by_server += 1
                return
            if not data:
                stats.closed_by_server += 1
                return
            stats.bytes_read += 1
            if second == 0:
                stats.started += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 1.0)
            if done.is_set():
                break
        stats.open_at_end += 1
    # Closing with unread bytes in the buffer: the kernel resets the connection.


async def _paced_small_client(
    server: LiveServer, content: bytes, rate: float, until: float
) -> tuple[list[float], Counter[str]]:
    """``rate`` GETs of small.txt a second on fresh connections (open loop), until ``until``."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors: Counter[str] = Counter()

    async def one() -> None:
        started = time.perf_counter()
        try:
            response = await asyncio.wait_for(
                rawhttp.arequest(server.host, server.port, "GET", "/files/small.txt"), 10
            )
        except TimeoutError:
            errors["timeout"] += 1
            return
        except (OSError, rawhttp.ProtocolError) as error:
            errors[type(error).__name__] += 1
            return
        if response.status != 200:
            errors[f"status {response.status}"] += 1
        elif response.body != content:
            errors["body"] += 1
        else:
            latencies.append(time.perf_counter() - started)

    tasks = []
    start = loop.time()
    for index in range(int((until - start) * rate) + 1):
        moment = start + index / rate
        if moment >= until:
            break
        await asyncio.sleep(max(0.0, moment - loop.time()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return latencies, errors


async def _slow_round(
    server: LiveServer, site: Site, clients: int, duration: float, small_rate: float
) -> tuple[SlowStats, list[float], Counter[str]]:
    """Connect the slow clients, wait until the server answers them all, then time the
    small file for ``duration`` s while they hold their connections."""
    loop = asyncio.get_running_loop()
    stats = SlowStats()
    done = asyncio.Event()
    readers = []
    for index in range(clients):
        reader = _slow_reader(server, "/files/big.bin", done, duration + 30, 1024, stats)
        readers.append(asyncio.create_task(reader))
        if index % 20 == 19:
            await asyncio.sleep(0.05)
    for _ in range(200):
        if stats.started + stats.connect_errors + stats.closed_by_server >= clients:
            break
        await asyncio.sleep(0.05)
    # The server goes on filling each connection's buffers for a moment (granian: about
    # 1 MiB each): wait until it idles, so that the timing is of the steady state.
    stats.quiet_after_s = await _until_idle(server.pid)
    latencies, errors = await _paced_small_client(
        server, site.media.files["small.txt"], small_rate, loop.time() + duration
    )
    done.set()
    await asyncio.gather(*readers)
    return stats, latencies, errors


def slow_clients(
    server: LiveServer,
    site: Site,
    *,
    clients: int = 200,
    duration: float = 20.0,
    small_rate: float = 20.0,
    fd_slack: int = 10,
    settle_timeout: float = 10.0,
) -> dict[str, Any]:
    """One server under ``clients`` slow readers for ``duration`` s; its figures."""
    raise_fd_limit(clients + 1024)
    asyncio.run(warm_up(server))
    probe = ProcessProbe(server.pid)
    rss_before, fds_before = probe.rss(), probe.fds()
    with probe:
        stats, latencies, errors = asyncio.run(
            _slow_round(server, site, clients, duration, small_rate)
        )
        settle = probe.wait_for_fds(fds_before + fd_slack, settle_timeout)
        exact = probe.wait_for_fds(fds_before, 2.0)
    fds_after = probe.fds()
    rss_after = probe.rss()
    return {
        "server": server.name,
        "clients": clients,
        "duration_s": duration,
        "slow": vars(stats),
        "rss_mib": {
            "before": mib(rss_before),
            "peak": mib(probe.peak_rss),
            "after": mib(rss_after),
        },
        "rss_growth_mib": mib(probe.peak_rss - rss_before),
        "fds": {
            "before": fds_before,
            "peak": probe.peak_fds,
            "after": fds_after,
            "settled_in_s": settle,
            "back_to_baseline_in_s": exact,
        },
        "small": {"rate": small_rate, "requests": len(latencies), **latency_summary(latencies)},
        "small_errors": dict(errors),
    }


# ---------------------------------------------------------------- many connections


@dataclass(frozen=True)
class Expected:
    """What a request must get: a status and the body (or the parts of a multipart body)."""

    kind: str
    target: str
    headers: Mapping[str, str]
    status: int
    body: bytes | None = None
    parts: tuple[tuple[str, bytes], ...] = ()
    """For ``multipart/byteranges``: (Content-Range, bytes) of each part."""


@dataclass
class Workload:
    """The mix of requests; ``next`` draws one."""

    files: Mapping[str, bytes]
    derivatives: dict[str, bytes] = field(default_factory=dict)
    etag: str = ""

    def next(self, rng: random.Random) -> Expected:
        roll = rng.random()
        big = self.files["big.bin"]
        if roll < 0.35:
            name = rng.choice(["small.txt", "nested/dir/deep.txt", NON_ASCII_NAME, "empty.txt"])
            return Expected("file", "/files/" + quote(name), {}, 200, self.files[name])
        if roll < 0.45:
            return Expected("file-1MiB", "/files/" + MEDIUM_FILE, {}, 200, self.files[MEDIUM_FILE])
        if roll < 0.65:
            first = rng.randrange(0, len(big) - 1)
            last = min(len(big) - 1, first + rng.randrange(0, 64 * 1024))
            headers = {"Range": f"bytes={first}-{last}"}
            return Expected("range", "/files/big.bin", headers, 206, big[first : last + 1])
        if roll < 0.80:
            spans = sorted(rng.sample(range(len(big) // 4096), 3))
            ranges = [(span * 4096, span * 4096 + rng.randrange(1, 4096)) for span in spans]
            rng.shuffle(ranges)
            header = "bytes=" + ",".join(f"{first}-{last}" for first, last in ranges)
            parts = tuple(
                (f"bytes {first}-{last}/{len(big)}", big[first : last + 1])
                for first, last in ranges
            )
            return Expected("multipart", "/files/big.bin", {"Range": header}, 206, parts=parts)
        if roll < 0.85 and self.etag:
            headers = {"If-None-Match": self.etag}
            return Expected("not-modified", "/files/small.txt", headers, 304, b"")
        target = rng.choice(sorted(self.derivatives))
        return Expected("derivative", target, {}, 200, self.derivatives[target])


def derivative_targets() -> list[str]:
    """Signed URLs of the derivatives of the load's source (Django settings of the site)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.derivatives_site.settings")
    from fileresponse.derivatives.signing import signed_path
    from fileresponse.derivatives.spec import parse_spec

    return [
        "/derivatives/" + signed_path(DERIVATIVE_SOURCE, parse_spec(spec))
        for spec in DERIVATIVE_SPECS
    ]


async def prepare_workload(server: LiveServer, site: Site) -> Workload:
    """Make the derivatives (misses) and keep their bytes; the load then only hits."""
    workload = Workload(site.media.files)
    for target in derivative_targets():
        first = await rawhttp.arequest(server.host, server.port, "GET", target)
        second = await rawhttp.arequest(server.host, server.port, "GET", target)
        if first.status != 200 or second.body != first.body:
            raise RuntimeError(f"derivative {target} answered {first.status}:\n{server.log_tail()}")
        workload.derivatives[target] = first.body
    small = await rawhttp.arequest(server.host, server.port, "HEAD", "/files/small.txt")
    workload.etag = small.header("ETag") or ""
    return workload


class BadResponse(Exception):
    """The response is not the expected one (status, framing or bytes)."""


@dataclass
class ConnectionStats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    reconnects: int = 0
    stale_retries: int = 0

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.examples) < 10:
            self.examples.append(f"{kind}: {detail}")


async def _read_response(reader: asyncio.StreamReader, method: str) -> rawhttp.RawResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    status_text, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not status_text.isdigit():
        raise BadResponse(f"bad status line {status_line!r}")
    headers = []
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise BadResponse(f"bad header line {line!r}")
        headers.append((name.strip(), value.strip()))
    status = int(status_text)
    response = rawhttp.RawResponse(status, reason, headers, b"", b"")
    if method == "HEAD" or status in (204, 304):
        return response
    length = response.header("Content-Length")
    if length is None:
        raise BadResponse(f"no Content-Length on a keep-alive {status}")
    body = await reader.readexactly(int(length))
    return rawhttp.RawResponse(status, reason, headers, body, body)


def _check(expected: Expected, response: rawhttp.RawResponse) -> None:
    if response.status != expected.status:
        raise BadResponse(f"{expected.target} {expected.headers}: status {response.status}")
    if expected.parts:
        content_type = response.header("Content-Type") or ""
        boundary = content_type.partition("boundary=")[2]
        if not content_type.startswith("multipart/byteranges") or not boundary:
            raise BadResponse(f"not multipart: {content_type!r}")
        if _multipart_parts(response.body, boundary) != sorted(expected.parts):
            raise BadResponse(f"multipart parts differ for {expected.headers}")
    elif response.body != expected.body:
        raise BadResponse(f"{expected.target} {expected.headers}: body differs")


def _multipart_parts(body: bytes, boundary: str) -> list[tuple[str, bytes]]:
    delimiter = f"--{boundary}".encode()
    if not body.endswith(delimiter + b"--\r\n"):
        raise BadResponse("multipart body without its closing delimiter")
    parts = []
    for piece in body[: -len(b"--\r\n")].split(delimiter)[1:-1]:
        head, _, data = piece[2:].partition(b"\r\n\r\n")
        fields = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n"))
        parts.append((fields.get("Content-Range", ""), data[:-2]))
    return sorted(parts)


async def _connection(
    server: LiveServer,
    workload: Workload,
    seed: int,
    until: float,
    max_requests: int,
    stats: ConnectionStats,
) -> None:
    """One keep-alive connection sending requests one after the other until ``until``."""
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    idle_since = loop.time()
    host = f"{server.host}:{server.port}"
    sent = 0
    try:
        while loop.time() < until and sent < max_requests:
            expected = workload.next(rng)
            fields = {"Connection": "keep-alive", **expected.headers}
            payload = rawhttp.build_request("GET", expected.target, host, fields)
            for attempt in (1, 2):
                if writer is None:
                    try:
                        reader, writer = await asyncio.wait_for(
                            asyncio.open_connection(server.host, server.port, limit=1 << 20), 10
                        )
                    except (OSError, TimeoutError) as error:
                        stats.error("connect", repr(error))
                        await asyncio.sleep(0.1)
                        break
                    stats.reconnects += 1
                    idle_since = loop.time()
                assert reader is not None
                started = time.perf_counter()
                idle = loop.time() - idle_since
                try:
                    writer.write(payload)
                    response = await asyncio.wait_for(_read_response(reader, "GET"), 30)
                except (asyncio.IncompleteReadError, ConnectionError) as error:
                    writer.close()
                    reader = writer = None
                    partial = isinstance(error, asyncio.IncompleteReadError) and error.partial
                    if attempt == 1 and idle > STALE_AFTER and not partial:
                        stats.stale_retries += 1  # the server closed an idle connection
                        continue
                    stats.error("closed", f"{expected.kind} after {idle:.2f} s idle: {error!r}")
                    break
                except TimeoutError:
                    stats.error("timeout", expected.kind)
                    writer.close()
                    reader = writer = None
                    break
                except (BadResponse, rawhttp.ProtocolError, ValueError) as error:
                    stats.error("protocol", repr(error))
                    writer.close()
                    reader = writer = None
                    break
                sent += 1
                try:
                    _check(expected, response)
                except BadResponse as error:
                    stats.error(expected.kind, str(error))
                else:
                    stats.latencies.setdefault(expected.kind, []).append(
                        time.perf_counter() - started
                    )
                idle_since = loop.time()
                if (response.header("Connection") or "").lower() == "close":
                    writer.close()
                    reader = writer = None
                break
    finally:
        if writer is not None:
            writer.close()


async def _connections_round(
    server: LiveServer, workload: Workload, connections: int, duration: float
) -> tuple[ConnectionStats, float]:
    loop = asyncio.get_running_loop()
    stats = ConnectionStats()
    start = loop.time()
    until = start + duration
    tasks = [
        asyncio.create_task(_connection(server, workload, seed, until, 1_000_000, stats))
        for seed in range(connections)
    ]
    await asyncio.gather(*tasks)
    return stats, loop.time() - start


def many_connections(
    server: LiveServer,
    site: Site,
    *,
    connections: int = 500,
    duration: float = 60.0,
    fd_slack: int = 10,
    settle_timeout: float = 10.0,
) -> dict[str, Any]:
    """``connections`` keep-alive connections for ``duration`` s on one server; its figures."""
    raise_fd_limit(connections + 1024)
    asyncio.run(warm_up(server))
    workload = asyncio.run(prepare_workload(server, site))
    generated_before = len(GENERATED.findall(server.log_tail(1_000_000)))
    probe = ProcessProbe(server.pid)
    rss_before, fds_before = probe.rss(), probe.fds()
    tree_before = probe.tree_rss()
    with probe:
        stats, elapsed = _run_client(server, workload, connections, duration)
        settle = probe.wait_for_fds(fds_before + fd_slack, settle_timeout)
        exact = probe.wait_for_fds(fds_before, 2.0)
    generated = len(GENERATED.findall(server.log_tail(1_000_000))) - generated_before
    everything = [value for values in stats.latencies.values() for value in values]
    return {
        "server": server.name,
        "connections": connections,
        "duration_s": duration,
        "requests": len(everything),
        "req_s": round(len(everything) / elapsed, 1),
        "errors": dict(stats.errors),
        "error_examples": stats.examples,
        "errors_total": sum(stats.errors.values()),
        "reconnects": stats.reconnects,
        "stale_retries": stats.stale_retries,
        "latency": latency_summary(everything),
        "by_kind": {
            kind: {"requests": len(values), **latency_summary(values)}
            for kind, values in sorted(stats.latencies.items())
        },
        "derivatives_generated_during_load": generated,
        "rss_mib": {
            "before": mib(rss_before),
            "peak": mib(probe.peak_rss),
            "after": mib(probe.rss()),
        },
        "rss_growth_mib": mib(probe.peak_rss - rss_before),
        "tree_rss_mib": {"before": mib(tree_before), "peak": mib(probe.peak_tree_rss)},
        "fds": {
            "before": fds_before,
            "peak": probe.peak_fds,
            "after": probe.fds(),
            "settled_in_s": settle,
            "back_to_baseline_in_s": exact,
        },
    }


def _run_client(
    server: LiveServer, workload: Workload, connections: int, duration: float
) -> tuple[ConnectionStats, float]:
    """The client loop on uvloop when it is installed (the client shares the CPUs)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_connections_round(server, workload, connections, duration))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_connections_round(server, workload, connections, duration))


# ---------------------------------------------------------------- report


def meta(parameters: dict[str, Any], loadavg_before: tuple[float, ...]) -> dict[str, Any]:
    def version(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_before": [round(value, 2) for value in loadavg_before],
        "loadavg_after": [round(value, 2) for value in os.getloadavg()],
        "parameters": parameters,
        "versions": {
            name: version(name)
            for name in ("fileresponse", "django", "uvicorn", "gunicorn", "granian", "uvloop")
        },
    }


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def slow_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| server | clients open at end | RSS MiB before / peak / after"
        " | fds before / peak / after | fds within 10 / at baseline after s"
        " | small p50 ms | small p99 ms | small max ms | small errors |",
        "|---|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for result in results:
        rss, fds, small = result["rss_mib"], result["fds"], result["small"]
        slow = result["slow"]
        lines.append(
            f"| {result['server']} | {slow['open_at_end']}/{result['clients']} "
            f"| {rss['before']} / {rss['peak']} / {rss['after']} "
            f"| {fds['before']} / {fds['peak']} / {fds['after']} "
            f"| {_cell(fds['settled_in_s'])} / {_cell(fds['back_to_baseline_in_s'])} "
            f"| {_cell(small['p50_ms'])} | {_cell(small['p99_ms'])} | {_cell(small['max_ms'])} "
            f"| {sum(result['small_errors'].values())} |"
        )
    return "\n".join(lines)


def connections_table(result: dict[str, Any]) -> str:
    latency, rss, fds = result["latency"], result["rss_mib"], result["fds"]
    lines = [
        "| server | connections | requests | req/s | errors | p50 ms | p99 ms | max ms "
        "| RSS MiB before / peak / after | fds before / peak / after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
        f"| {result['server']} | {result['connections']} | {result['requests']} "
        f"| {result['req_s']} | {result['errors_total']} | {_cell(latency['p50_ms'])} "
        f"| {_cell(latency['p99_ms'])} | {_cell(latency['max_ms'])} "
        f"| {rss['before']} / {rss['peak']} / {rss['after']} "
        f"| {fds['before']} / {fds['peak']} / {fds['after']} |",
        "",
        "| kind | requests | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
    ]
    by_kind = result["by_kind"]
    for kind, figures in by_kind.items():
        lines.append(
            f"| {kind} | {figures['requests']} | {_cell(figures['p50_ms'])} "
            f"| {_cell(figures['p99_ms'])} | {_cell(figures['max_ms'])} |"
        )
    return "\n".join(lines)


def write_report(out: Path, name: str, report: dict[str, Any], table: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"load-{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"load-{name}.md").write_text(f"# load: {name}\n\n{table}\n")
    print(table)
    print(f"\nwrote {out / f'load-{name}.json'} and {out / f'load-{name}.md'}")


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=["slow-clients", "connections"])
    parser.add_argument("--duration", type=float, help="seconds of load (20 / 60)")
    parser.add_argument("--clients", type=int, default=200, help="slow clients (200)")
    parser.add_argument("--small-rate", type=float, default=20.0, help="small-file GETs/s (20)")
    parser.add_argument("--connections", type=int, default=500, help="connections (500)")
    parser.add_argument(
        "--servers", help=f"comma list for slow-clients (default {','.join(SLOW_SERVERS)})"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    loadavg_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="fr-load-") as base:
        site = build_site(Path(base))
        if args.scenario == "slow-clients":
            duration = args.duration or 20.0
            names = args.servers.split(",") if args.servers else list(SLOW_SERVERS)
            results = []
            for name in names:
                print(f"{name}: {args.clients} slow clients for {duration:g} s", flush=True)
                with running_server(site, name) as server:
                    results.append(
                        slow_clients(
                            server,
                            site,
                            clients=args.clients,
                            duration=duration,
                            small_rate=args.small_rate,
                        )
                    )
            parameters = {
                "clients": args.clients,
                "duration_s": duration,
                "small_rate": args.small_rate,
                "read": "1 byte/s, SO_RCVBUF 1024",
                "file": "big.bin, 10 MiB",
            }
            report = {"meta": meta(parameters, loadavg_before), "results": results}
            write_report(args.out, "slow-clients", report, slow_table(results))
        else:
            duration = args.duration or 60.0
            print(f"{CONNECTIONS_SERVER}: {args.connections} connections for {duration:g} s")
            with running_server(site, CONNECTIONS_SERVER) as server:
                result = many_connections(
                    server, site, connections=args.connections, duration=duration
                )
            parameters = {"connections": args.connections, "duration_s": duration}
            report = {"meta": meta(parameters, loadavg_before), "results": [result]}
            write_report(args.out, "connections", report, connections_table(result))
            if result["errors_total"]:
                print(f"errors: {result['errors']}\n" + "\n".join(result["error_examples"]))
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
