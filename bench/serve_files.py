#!/usr/bin/env python3
"""Side-by-side file serving benchmark for fileresponse.

Peers (one worker each, all serving the same generated files from one temp dir):

   1 nginx                   nginx, sendfile on, 1 worker (skipped when nginx is not installed)
   2 fileresponse-worker     Django + fileresponse.asgi.get_asgi_application() + views.serve
                             (apps/fr_site) under gunicorn -k fileresponse.workers.UvicornWorker
                             (http.response.zerocopysend: sendfile)
   3 fileresponse-uvicorn    the same site under stock uvicorn (no zerocopysend, no pathsend)
   4 starlette-uvicorn       Starlette + starlette.responses.FileResponse, stock uvicorn
   5 starlette-worker        the same app under the library's worker (FileResponse: pathsend)
   6 django-static-serve     Django's stock handler + django.views.static.serve, uvicorn
   7 django-fileresponse     Django's stock handler + a view returning
                             django.http.FileResponse(open(...)) (apps/djfile_site), uvicorn
   8 fileresponse-granian    peer 2's site under granian --interface asgi (pathsend)
  small files only (scenario c):
   9 fastpath-worker         fr_site with FILERESPONSE["FAST_PATHS"] = {"/files/": {"root": ...}}
                             (apps/fastpath_site), the library's worker
  10 fastpath-uvicorn        the same, stock uvicorn
  11 django-floor-worker     the floor of any Django response: an async view returning a 4 KiB
                             HttpResponse, Django's stock handler (apps/floor_site), the worker
  12 django-floor-uvicorn    the same, stock uvicorn
  13 fileresponse-worker-mw  peer 2 with the example project's two middlewares
  14 django-floor-worker-mw  peer 11 with the same two middlewares
  15 fileresponse-uvicorn-mw peer 3 with the same two middlewares
  16 django-floor-uvicorn-mw peer 12 with the same two middlewares

Scenarios, each after a warm-up, one peer at a time:

  hot    wrk (50 connections) downloading one 10 MiB file, and during it a paced asyncio
         raw-socket client (5 connections, 100 req/s in total) fetching a 4 KiB file: p50/p99
  paced  the same downloads at an equal rate for every peer: 50 curl processes, each fetching
         the 10 MiB file again and again at --paced-rate MiB/s (default 8: 400 MiB/s in all,
         below the slowest peer's hot rate), and the same small-file client; the MiB/s the
         curls received (their /proc/<pid>/io), so a peer that cannot keep up shows it
  cold   wrk (50 connections) on 100 distinct 10 MiB files (1 GiB, generated into the temp
         dir; they stay in the page cache), paths taken round-robin by a Lua request()
  small  wrk (16 connections, 1 thread) on the 4 KiB file alone: requests/s, p50/p99

Server CPU is the CPU time (user + system) of the server's process tree over the measured
window; for hot, paced and cold it is also given per GB sent (10^9 bytes). Peak RSS of the
tree is sampled every 50 ms. "other CPU %" is the machine's busy time not spent by the server,
wrk, curl, the small-file client or this script: another program competing for the cores.

Results: markdown tables on stdout, and in --out (default bench/results/): serve_files.json,
serve_files.md, serve_files.png. python bench/report.py then regenerates README.md's summary.

Usage:
  python bench/serve_files.py                    # all peers, all scenarios, 15 s each
  python bench/serve_files.py --quick            # 3 s each, smoke run
  python bench/serve_files.py --peers 1,2,4      # subset, by number or name
  python bench/serve_files.py --scenarios small  # subset of hot,paced,cold,small
  sudo python bench/serve_files.py --install     # apt-get install wrk nginx curl (root only)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import hashlib
import http.client
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
APPS = HERE / "apps"
MiB = 1024 * 1024
GB = 1e9

LARGE_NAME = "large.bin"
SMALL_NAME = "small.bin"
COLD_DIR = "cold"
LARGE_SIZE = 10 * MiB
SMALL_SIZE = 4 * 1024

SCENARIOS = ("hot", "paced", "cold", "small")
#: How tables, checks and the plot name the scenarios.
SCENARIO_LETTERS = {"hot": "a", "paced": "a'", "cold": "b", "small": "c"}
SCENARIO_TITLES = {
    "hot": "(a) hot: one 10 MiB file",
    "paced": "(a') paced: the same downloads at an equal rate for every peer",
    "cold": "(b) cold-ish: distinct 10 MiB files",
    "small": "(c) small files alone: 4 KiB",
}

# Targets checked in the report (see README.md).
RSS_LIMIT_MIB = 128.0
#: "other CPU %" above this (100 = one core) marks a measurement as disturbed.
FOREIGN_CPU_LIMIT = 15.0

WORKER_CLASS = "fileresponse.workers.UvicornWorker"


@dataclass(frozen=True)
class Peer:
    """One server and site. ``server``: nginx, worker (gunicorn + the library's worker),
    uvicorn (stock) or granian."""

    name: str
    server: str
    app: str = ""
    settings: str | None = None
    middleware: str = "none"
    scenarios: tuple[str, ...] = SCENARIOS
    needs: tuple[str, ...] = ()
    fast_path: bool = False
    about: str = ""


_FR = "fr_site.asgi:application"
_FAST = "fastpath_site.asgi:application"
_FLOOR = "floor_site.asgi:application"
_SMALL_ONLY = ("small",)

PEERS: tuple[Peer, ...] = (
    Peer("nginx", "nginx", about="nginx, sendfile on"),
    Peer(
        "fileresponse-worker",
        "worker",
        _FR,
        "fr_site.settings",
        about="fr_site (views.serve), fileresponse's worker",
    ),
    Peer(
        "fileresponse-uvicorn",
        "uvicorn",
        _FR,
        "fr_site.settings",
        about="fr_site (views.serve), stock uvicorn",
    ),
    Peer(
        "starlette-uvicorn",
        "uvicorn",
        "starlette_site:app",
        needs=("starlette",),
        about="Starlette FileResponse, stock uvicorn",
    ),
    Peer(
        "starlette-worker",
        "worker",
        "starlette_site:app",
        needs=("starlette",),
        about="Starlette FileResponse (pathsend), fileresponse's worker",
    ),
    Peer(
        "django-static-serve",
        "uvicorn",
        "stock_site.asgi:application",
        "stock_site.settings",
        about="Django static.serve, stock handler, uvicorn",
    ),
    Peer(
        "django-fileresponse",
        "uvicorn",
        "djfile_site.asgi:application",
        "djfile_site.settings",
        about="Django FileResponse(open()), stock handler, uvicorn",
    ),
    Peer(
        "fileresponse-granian",
        "granian",
        _FR,
        "fr_site.settings",
        needs=("granian",),
        about="fr_site (views.serve), granian (pathsend)",
    ),
    Peer(
        "fastpath-worker",
        "worker",
        _FAST,
        "fastpath_site.settings",
        scenarios=_SMALL_ONLY,
        fast_path=True,
        about="FAST_PATHS /files/ (before the 2 middlewares), fileresponse's worker",
    ),
    Peer(
        "fastpath-uvicorn",
        "uvicorn",
        _FAST,
        "fastpath_site.settings",
        scenarios=_SMALL_ONLY,
        fast_path=True,
        about="FAST_PATHS /files/ (before the 2 middlewares), stock uvicorn",
    ),
    Peer(
        "django-floor-worker",
        "worker",
        _FLOOR,
        "floor_site.settings",
        scenarios=_SMALL_ONLY,
        about="async view, 4 KiB HttpResponse, no middleware, fileresponse's worker",
    ),
    Peer(
        "django-floor-uvicorn",
        "uvicorn",
        _FLOOR,
        "floor_site.settings",
        scenarios=_SMALL_ONLY,
        about="async view, 4 KiB HttpResponse, no middleware, stock uvicorn",
    ),
    Peer(
        "fileresponse-worker-mw",
        "worker",
        _FR,
        "fr_site.settings",
        "example",
        _SMALL_ONLY,
        about="fr_site + the example's 2 middlewares, fileresponse's worker",
    ),
    Peer(
        "django-floor-worker-mw",
        "worker",
        _FLOOR,
        "floor_site.settings",
        "example",
        _SMALL_ONLY,
        about="floor + the example's 2 middlewares, fileresponse's worker",
    ),
    Peer(
        "fileresponse-uvicorn-mw",
        "uvicorn",
        _FR,
        "fr_site.settings",
        "example",
        _SMALL_ONLY,
        about="fr_site + the example's 2 middlewares, stock uvicorn",
    ),
    Peer(
        "django-floor-uvicorn-mw",
        "uvicorn",
        _FLOOR,
        "floor_site.settings",
        "example",
        _SMALL_ONLY,
        about="floor + the example's 2 middlewares, stock uvicorn",
    ),
)
PEER_ORDER = [p.name for p in PEERS]
PEER_BY_NAME = {p.name: p for p in PEERS}

# --------------------------------------------------------------------------------------
# process bookkeeping: every child we start is registered and killed on any exit path
# --------------------------------------------------------------------------------------

_LIVE: dict[int, subprocess.Popen] = {}


def _spawn(cmd, **kw) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, start_new_session=True, **kw)
    _LIVE[proc.pid] = proc
    return proc


def _kill_group(proc: subprocess.Popen, sig=signal.SIGTERM, grace: float = 10.0) -> None:
    """Stop a child started with start_new_session=True, with its whole process group."""
    try:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
        # the leader may be gone while children of its group still run
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    finally:
        _LIVE.pop(proc.pid, None)


def _kill_all_live() -> None:
    for proc in list(_LIVE.values()):
        _kill_group(proc, grace=3.0)


def _on_signal(signum, frame):  # SIGTERM/SIGHUP -> unwind through the finally blocks
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


class PeerError(Exception):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def have_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def tool_version(cmd: list[str]) -> str | None:
    if not shutil.which(cmd[0]):
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0].strip() if text else None


def _short(text: str | None, after: str) -> str | None:
    """'nginx version: nginx/1.22.1' -> '1.22.1'; 'wrk debian/4.1 [epoll] ...' -> 'debian/4.1'."""
    if not text:
        return text
    if after in text:
        text = text.split(after, 1)[1]
    return text.split()[0] if text.split() else text


def percentile(sorted_vals: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def http_get(port: int, path: str, timeout: float = 60.0) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


# --------------------------------------------------------------------------------------
# RSS sampling
# --------------------------------------------------------------------------------------


class RssSampler(threading.Thread):
    """Samples the RSS sum of a process and all its descendants every `interval` s."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        import psutil

        self._psutil = psutil
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._halt = threading.Event()

    def sample(self) -> int:
        ps = self._psutil
        try:
            root = ps.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except (ps.NoSuchProcess, ps.AccessDenied):
            return 0
        total = 0
        for p in procs:
            with contextlib.suppress(ps.NoSuchProcess, ps.AccessDenied):
                total += p.memory_info().rss
        self.samples += 1
        self.peak = max(self.peak, total)
        return total

    def run(self):
        while not self._halt.wait(self.interval):
            self.sample()

    def stop(self):
        self._halt.set()
        if self.is_alive():
            self.join(timeout=2)

    def tree_cpu_percent(self, window: float = 0.3) -> float:
        """CPU use of the process tree over `window` seconds (100 = one core)."""
        ps = self._psutil
        try:
            root = ps.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except ps.NoSuchProcess:
            return 0.0

        def cpu_total():
            t = 0.0
            for p in procs:
                with contextlib.suppress(ps.NoSuchProcess, ps.AccessDenied):
                    c = p.cpu_times()
                    t += c.user + c.system
            return t

        a = cpu_total()
        time.sleep(window)
        return 100.0 * (cpu_total() - a) / window


# --------------------------------------------------------------------------------------
# small-file latency client (runs in its own process: python serve_files.py --_small-client)
# --------------------------------------------------------------------------------------


async def _small_conn(port, path, interval, start, deadline, expect_len, lat, errs):
    loop = asyncio.get_running_loop()
    req = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: bench-small\r\n\r\n".encode()
    )
    reader = writer = None
    next_t = start
    while True:
        now = loop.time()
        if now >= deadline:
            break
        if next_t > now:
            await asyncio.sleep(next_t - now)
            if loop.time() >= deadline:
                break
        next_t += interval
        if next_t < loop.time() - interval:  # far behind schedule: do not burst to catch up
            next_t = loop.time()
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port), 10
                )
            t0 = time.perf_counter()
            writer.write(req)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            if "content-length" in headers:
                body = await asyncio.wait_for(
                    reader.readexactly(int(headers["content-length"])), 30
                )
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                parts = []
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        await reader.readuntil(b"\r\n")
                        break
                    parts.append(await reader.readexactly(size))
                    await reader.readexactly(2)
                body = b"".join(parts)
            else:
                raise ValueError("response without length")
            dt = time.perf_counter() - t0
            if status != 200:
                errs["status"] = errs.get("status", 0) + 1
            elif len(body) != expect_len:
                errs["short_body"] = errs.get("short_body", 0) + 1
            else:
                lat.append(dt)
            if headers.get("connection", "").lower() == "close":
                writer.close()
                reader = writer = None
        except TimeoutError:
            errs["timeout"] = errs.get("timeout", 0) + 1
            if writer is not None:
                writer.close()
            reader = writer = None
        except (
            OSError,
            ValueError,
            IndexError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ) as e:
            key = type(e).__name__
            errs[key] = errs.get(key, 0) + 1
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def _small_client_main(cfg: dict) -> dict:
    loop = asyncio.get_running_loop()
    conns = cfg["connections"]
    interval = conns / cfg["rate"]
    start = loop.time()
    deadline = start + cfg["duration"]
    lat: list[float] = []
    errs: dict[str, int] = {}
    tasks = [
        _small_conn(
            cfg["port"],
            cfg["path"],
            interval,
            start + i * interval / conns,
            deadline,
            cfg["expect_len"],
            lat,
            errs,
        )
        for i in range(conns)
    ]
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    lat.sort()
    ms = [x * 1000 for x in lat]
    return {
        "requests": len(lat),
        "rate_target": cfg["rate"],
        "rate_achieved": len(lat) / elapsed if elapsed else 0.0,
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": ms[-1] if ms else None,
        "errors": errs,
    }


def small_client_entry(cfg_json: str) -> int:
    cfg = json.loads(cfg_json)
    res = asyncio.run(_small_client_main(cfg))
    sys.stdout.write(json.dumps(res) + "\n")
    return 0


# --------------------------------------------------------------------------------------
# CPU accounting: the server's tree, and what the rest of the machine did meanwhile
# --------------------------------------------------------------------------------------


def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (reaped ones included)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    t = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            c = p.cpu_times()
            t += (
                c.user
                + c.system
                + getattr(c, "children_user", 0)
                + getattr(c, "children_system", 0)
            )
    return t


def _tree_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process and all its descendants."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    user = system = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            c = p.cpu_times()
            user += c.user + getattr(c, "children_user", 0)
            system += c.system + getattr(c, "children_system", 0)
    return user, system


def _machine_busy_seconds() -> float:
    """CPU seconds all cores spent in user and system mode (not idle, iowait, irq, steal)."""
    import psutil

    c = psutil.cpu_times()
    return c.user + c.nice + c.system


def _steal_seconds() -> float:
    """CPU seconds the hypervisor gave to other guests while this one wanted to run."""
    import psutil

    return getattr(psutil.cpu_times(), "steal", 0.0)


def _own_cpu_seconds() -> float:
    """CPU seconds of this script and of its reaped children (wrk, the small-file client).

    The curl processes of ``paced`` run across the window's edges: CpuWindow reads their CPU
    itself (``load_cpu``), and they are reaped only after it stopped.
    """
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


@dataclass
class CpuWindow:
    """CPU time over a measured window: the server's tree and the machine's other programs."""

    server_pid: int
    #: CPU seconds of load processes that are not reaped before stop() (paced's curls)
    load_cpu: Callable[[], float] | None = None
    t0: float = 0.0
    user0: float = 0.0
    system0: float = 0.0
    busy0: float = 0.0
    own0: float = 0.0
    load0: float = 0.0
    steal0: float = 0.0

    def start(self) -> CpuWindow:
        self.user0, self.system0 = _tree_cpu_split(self.server_pid)
        self.busy0 = _machine_busy_seconds()
        self.own0 = _own_cpu_seconds()
        self.load0 = self.load_cpu() if self.load_cpu else 0.0
        self.steal0 = _steal_seconds()
        self.t0 = time.monotonic()
        return self

    def stop(self) -> dict:
        """After wrk and the small-file client were reaped (while paced's curls still run, not
        reaped): server and foreign CPU."""
        wall = time.monotonic() - self.t0
        user, system = _tree_cpu_split(self.server_pid)
        user, system = user - self.user0, system - self.system0
        server = user + system
        busy = _machine_busy_seconds() - self.busy0
        own = _own_cpu_seconds() - self.own0
        if self.load_cpu:
            own += self.load_cpu() - self.load0
        steal = _steal_seconds() - self.steal0
        foreign = max(0.0, busy - server - own)
        return {
            "wall_s": round(wall, 3),
            "server_cpu_s": round(server, 3),
            "server_user_s": round(user, 3),
            "server_system_s": round(system, 3),
            "server_cpu_pct": round(100 * server / wall, 1) if wall else None,
            "load_cpu_pct": round(100 * own / wall, 1) if wall else None,
            "other_cpu_pct": round(100 * foreign / wall, 1) if wall else None,
            "steal_pct": round(100 * steal / wall, 1) if wall else None,
        }


def machine_busy_pct(window: float = 3.0) -> float:
    """CPU use of the whole machine over ``window`` s, without this script (100 = one core)."""
    b0, o0 = _machine_busy_seconds(), _own_cpu_seconds()
    time.sleep(window)
    return 100 * max(0.0, (_machine_busy_seconds() - b0) - (_own_cpu_seconds() - o0)) / window


def wait_quiet(max_wait: float, limit: float = 20.0) -> dict:
    """Wait (at most ``max_wait`` s) until the machine is idle between two peers."""
    t0 = time.monotonic()
    busy = machine_busy_pct()
    while busy > limit and time.monotonic() - t0 < max_wait:
        print(
            f"  machine busy ({busy:.0f}% of a core, load {os.getloadavg()[0]:.2f}): waiting",
            flush=True,
        )
        time.sleep(10)
        busy = machine_busy_pct()
    return {"busy_pct_before": round(busy, 1), "waited_s": round(time.monotonic() - t0, 1)}


# --------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------

#: wrk's summary as one JSON line: the done() hook (latencies from wrk's own histogram).
WRK_DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""

#: The name the other benchmarks (serve_minio.py) import.
WRK_LUA = WRK_DONE_LUA

#: Scenario (b): each request takes the next of the COUNT distinct files; each wrk thread
#: starts elsewhere in the list, so the connections spread over all of them.
WRK_COLD_LUA = r"""
local count = __COUNT__
local next_file = 0
local threads = 0

setup = function(thread)
  thread:set("first", threads * math.floor(count / 2) + threads)
  threads = threads + 1
end

init = function(args)
  next_file = first or 0
end

request = function()
  local path = string.format("/files/__DIR__/%03d.bin", next_file % count)
  next_file = next_file + 1
  return wrk.format("GET", path)
end
"""


def wrk_cmd(
    url: str, connections: int, threads: int, duration: float, lua: Path, timeout_s: int
) -> list[str]:
    return [
        "wrk",
        f"-t{max(1, min(threads, connections))}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(lua),
        url,
    ]


def parse_wrk(stdout: str) -> dict:
    for line in stdout.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[len("WRKJSON ") :])
    raise PeerError(f"could not parse wrk output:\n{stdout[-2000:]}")


def cold_name(i: int) -> str:
    return f"{COLD_DIR}/{i:03d}.bin"


# --------------------------------------------------------------------------------------
# curl: the paced downloads of scenario paced
# --------------------------------------------------------------------------------------

#: curl's --rate (transfers per time unit) came with 7.84.0.
CURL_MIN_VERSION = (7, 84)
#: Transfers each curl is given beyond warm-up + duration, in seconds of downloads.
PACED_MARGIN_S = 30.0
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def curl_missing() -> str | None:
    """Why scenario paced cannot run here (no curl, too old a curl, no /proc/<pid>/io), or None."""
    exe = shutil.which("curl")
    if not exe:
        return "curl is not on PATH (Debian/Ubuntu: apt-get install -y curl)"
    version = _short(tool_version([exe, "--version"]), "curl ") or ""
    try:
        parts = tuple(int(x) for x in version.split(".")[:2])
    except ValueError:
        parts = ()
    if parts < CURL_MIN_VERSION:
        return f"curl {version or '?'} is older than 7.84 (no --rate)"
    if not os.path.exists(f"/proc/{os.getpid()}/io"):
        return "no /proc/<pid>/io to count the bytes curl receives"
    return None


def paced_curl_cmd(curl: str, url: str, rate_mib: float, transfers: int) -> list[str]:
    """One paced download loop: ``transfers`` times ``url`` on one keep-alive connection.

    ``--limit-rate`` alone lets each transfer start with a burst (curl 7.88 got a 10 MiB file
    at 8M in 0.3 to 1.2 s); ``--rate``, transfers started per hour, holds the average: one
    transfer every 10 MiB / rate. The bodies go to stdout, /dev/null.
    """
    limit = f"{rate_mib:g}M" if float(rate_mib).is_integer() else str(int(rate_mib * MiB))
    per_hour = max(1, round(rate_mib * MiB * 3600 / LARGE_SIZE))
    return [
        curl,
        "-sS",
        "--globoff",
        "--fail",
        "--fail-early",
        "--limit-rate",
        limit,
        "--rate",
        f"{per_hour}/h",
        *([url] * transfers),
    ]


def _proc_written_cpu(pid: int) -> tuple[int, float] | None:
    """(bytes written, CPU seconds) of a process from /proc, a zombie's too; None when gone.

    curl receives with recv(), which /proc/<pid>/io's rchar does not count; its wchar counts
    the bodies it writes to stdout (/dev/null): the bytes received, without the headers.
    """
    try:
        with open(f"/proc/{pid}/io") as f:
            io = f.read()
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    written = 0
    for line in io.splitlines():
        if line.startswith("wchar:"):
            written = int(line.split(":", 1)[1])
    fields = stat.rsplit(")", 1)[1].split()
    return written, (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime


class PacedClients:
    """``connections`` curl processes, each downloading ``url`` again and again at ``rate_mib``.

    Started through _spawn (own process groups, killed on every exit path), their starts
    spread over one transfer period. They are not reaped before stop(), so /proc keeps their
    counters (a zombie's too) for the window's two readings.
    """

    def __init__(
        self, curl: str, url: str, connections: int, rate_mib: float, seconds: float, log: Path
    ):
        self.connections = connections
        self.rate_mib = rate_mib
        self.period = LARGE_SIZE / (rate_mib * MiB)
        self.transfers = math.ceil((seconds + PACED_MARGIN_S) / self.period) + 1
        self.cmd = paced_curl_cmd(curl, url, rate_mib, self.transfers)
        self.log = log
        self.procs: list[subprocess.Popen] = []
        self._last: dict[int, tuple[int, float]] = {}

    def describe(self) -> str:
        return " ".join(self.cmd[: -self.transfers]) + f" <url> x {self.transfers} > /dev/null"

    def start(self) -> None:
        gap = min(self.period, 1.0) / max(1, self.connections)
        with open(self.log, "ab") as logf:
            for i in range(self.connections):
                if i:
                    time.sleep(gap)
                self.procs.append(
                    _spawn(
                        self.cmd,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=logf,
                    )
                )

    def _sample(self) -> tuple[int, float]:
        for p in self.procs:
            got = _proc_written_cpu(p.pid)
            if got is not None:
                self._last[p.pid] = got
        return (
            sum(w for w, _ in self._last.values()),
            sum(c for _, c in self._last.values()),
        )

    def written(self) -> int:
        """Bytes the curl processes received (bodies) since they started."""
        return self._sample()[0]

    def cpu_seconds(self) -> float:
        return self._sample()[1]

    def stop(self) -> dict[str, int]:
        """Kill them all; the exit codes other than from being killed, as errors."""
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGTERM)
        errors: dict[str, int] = {}
        for p in self.procs:
            _kill_group(p, grace=3.0)
            if p.returncode not in (-signal.SIGTERM, -signal.SIGKILL):
                key = f"curl_exit_{p.returncode}"
                errors[key] = errors.get(key, 0) + 1
        return errors


# --------------------------------------------------------------------------------------
# peers
# --------------------------------------------------------------------------------------


@dataclass
class Ctx:
    tmp: Path
    docroot: Path
    shas: dict[str, str]
    sizes: dict[str, int]
    args: argparse.Namespace
    scenarios: tuple[str, ...]
    python: str = sys.executable
    uvicorn_fast: list[str] = field(default_factory=list)
    fast_path: str | None = None  # why there is no fast path, when there is none
    curl: str | None = None  # curl's path, for scenario paced


def base_env(docroot: Path) -> dict:
    env = dict(os.environ)
    parts = [str(APPS), str(REPO)]
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["BENCH_DOC_ROOT"] = str(docroot)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("BENCH_MIDDLEWARE", None)
    return env


def uvicorn_cmd(ctx: Ctx, app: str, port: int) -> list[str]:
    return [
        ctx.python,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--lifespan",
        "off",
        *ctx.uvicorn_fast,
    ]


def worker_cmd(ctx: Ctx, app: str, port: int) -> list[str]:
    """gunicorn, one worker of the library's class (uvloop and its httptools protocol)."""
    return [
        ctx.python,
        "-m",
        "gunicorn",
        "--workers",
        "1",
        "-k",
        WORKER_CLASS,
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "--graceful-timeout",
        "5",
        app,
    ]


def granian_cmd(ctx: Ctx, app: str, port: int) -> list[str]:
    return [
        ctx.python,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--workers",
        "1",
        "--http",
        "1",
        "--no-ws",
        "--no-access-log",
        "--log-level",
        "warning",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        app,
    ]


def nginx_conf(ctx: Ctx, port: int, prefix: Path) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""
    return textwrap.dedent(f"""\
        {user}worker_processes 1;
        daemon off;
        master_process on;
        pid {prefix}/nginx.pid;
        error_log {prefix}/error.log warn;
        events {{ worker_connections 1024; }}
        http {{
            access_log off;
            sendfile on;
            tcp_nopush on;
            default_type application/octet-stream;
            keepalive_requests 1000000;
            keepalive_timeout 65;
            client_body_temp_path {prefix}/client_body;
            proxy_temp_path {prefix}/proxy;
            fastcgi_temp_path {prefix}/fastcgi;
            uwsgi_temp_path {prefix}/uwsgi;
            scgi_temp_path {prefix}/scgi;
            server {{
                listen 127.0.0.1:{port};
                location /files/ {{
                    alias {ctx.docroot}/;
                }}
            }}
        }}
        """)


def source_commit() -> str | None:
    """The commit of the library's source tree (``+dirty`` with local changes), if a git tree."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "log", "-1", "--format=%h", "--", "fileresponse"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "fileresponse"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (head + ("+dirty" if dirty else "")) or None


def fast_path_missing() -> str | None:
    """Why the library has no fast path (``FILERESPONSE["FAST_PATHS"]``), or None."""
    if str(REPO) not in sys.path:
        sys.path.append(str(REPO))
    try:
        from fileresponse.conf import DEFAULTS
    except Exception as error:  # any import problem: no fast path to measure
        return f"no fast path: fileresponse.conf does not import ({error})"
    if "FAST_PATHS" not in DEFAULTS or not have_module("fileresponse.fastpath"):
        return "no fast path: fileresponse has no FILERESPONSE['FAST_PATHS']"
    return None


def peer_command(peer: Peer, ctx: Ctx, port: int) -> tuple[list[str], dict, str | None]:
    """Return (argv, env, skip_reason)."""
    env = base_env(ctx.docroot)
    for module in peer.needs:
        if not have_module(module):
            return [], env, f"{module} is not installed"
    if peer.fast_path and ctx.fast_path:
        return [], env, ctx.fast_path
    if peer.settings:
        env["DJANGO_SETTINGS_MODULE"] = peer.settings
    env["BENCH_MIDDLEWARE"] = peer.middleware
    if peer.server == "uvicorn":
        return uvicorn_cmd(ctx, peer.app, port), env, None
    if peer.server == "worker":
        for module in ("gunicorn", "uvicorn_worker"):
            if not have_module(module):
                return [], env, f"{module} is not installed (the worker needs it)"
        return worker_cmd(ctx, peer.app, port), env, None
    if peer.server == "granian":
        return granian_cmd(ctx, peer.app, port), env, None
    if peer.server == "nginx":
        exe = shutil.which("nginx") or next(
            (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
        )
        if not exe:
            return [], env, "nginx is not installed"
        prefix = ctx.tmp / "nginx"
        prefix.mkdir(exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(nginx_conf(ctx, port, prefix))
        return [exe, "-e", str(prefix / "error.log"), "-p", str(prefix), "-c", str(conf)], env, None
    raise ValueError(peer.server)


def wait_ready(
    proc: subprocess.Popen,
    port: int,
    log: Path,
    timeout: float = 60.0,
    probe: str = f"/files/{SMALL_NAME}",
) -> float:
    """Seconds until the server answers ``probe`` with 200 (PeerError if it dies or times out)."""
    t0 = time.monotonic()
    last = ""
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise PeerError(
                f"server exited with code {proc.returncode} during start-up:\n{tail(log)}"
            )
        try:
            status, _, _ = http_get(port, probe, timeout=2)
            if status == 200:
                return time.monotonic() - t0
            last = f"HTTP {status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise PeerError(f"server not ready after {timeout:.0f}s (last: {last}):\n{tail(log)}")


def verify(ctx: Ctx, port: int, names: list[str]) -> dict:
    """One full download of each file: status 200, the right length and sha256."""
    out = {}
    for name in names:
        status, headers, body = http_get(port, f"/files/{name}")
        got = hashlib.sha256(body).hexdigest()
        if status != 200:
            raise PeerError(f"GET /files/{name}: status {status}, expected 200")
        if len(body) != ctx.sizes[name] or got != ctx.shas[name]:
            raise PeerError(
                f"GET /files/{name}: wrong bytes ({len(body)} bytes, sha256 {got[:16]}...)"
            )
        out[name] = {
            "status": status,
            "sha256_ok": True,
            "content_length": headers.get("content-length"),
            "content_type": headers.get("content-type"),
        }
    return out


# --------------------------------------------------------------------------------------
# one scenario: warm-up, then the measured window
# --------------------------------------------------------------------------------------


@dataclass
class Load:
    """What one scenario runs: wrk (and for ``hot`` the paced small-file client); for
    ``paced``, ``connections`` curl processes at ``rate_mib`` MiB/s each and the small client."""

    scenario: str
    url: str
    connections: int
    threads: int
    lua: Path | None
    small_cfg: dict | None = None
    rate_mib: float = 0.0


def _run_wrk(load: Load, duration: float, timeout_s: int) -> str:
    assert load.lua is not None
    w = _spawn(
        wrk_cmd(load.url, load.connections, load.threads, duration, load.lua, timeout_s),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = w.communicate(timeout=duration + 120)
    finally:
        _kill_group(w, grace=1)
    return out


def _small_client(ctx: Ctx, cfg: dict) -> subprocess.Popen:
    return _spawn(
        [ctx.python, str(Path(__file__).resolve()), "--_small-client", json.dumps(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _small_result(sc: subprocess.Popen, sout: str, serr: str) -> dict:
    if sc.returncode != 0:
        raise PeerError(f"small-file client failed (code {sc.returncode}):\n{serr[-2000:]}")
    sm = json.loads(sout.strip().splitlines()[-1])
    return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in sm.items()}


def _per_gb(res: dict, window: dict, nbytes: int) -> None:
    gb = nbytes / GB
    res["cpu_s_per_gb"] = round(window["server_cpu_s"] / gb, 3) if gb else None
    res["user_s_per_gb"] = round(window["server_user_s"] / gb, 3) if gb else None
    res["system_s_per_gb"] = round(window["server_system_s"] / gb, 3) if gb else None


def _disturbed(window: dict) -> bool:
    return (window["other_cpu_pct"] or 0) > FOREIGN_CPU_LIMIT or (
        window["steal_pct"] or 0
    ) > FOREIGN_CPU_LIMIT


def run_scenario(
    peer: Peer, ctx: Ctx, proc: subprocess.Popen, sampler: RssSampler, load: Load
) -> dict:
    a = ctx.args
    wrk_timeout = max(30, int(a.duration) * 2)
    if a.warmup > 0:
        print(f"[{peer.name}] {load.scenario}: warm-up {a.warmup:g}s", flush=True)
        _run_wrk(load, a.warmup, wrk_timeout)
        # let the server finish responses whose clients went away with the warm-up wrk
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10 and sampler.tree_cpu_percent(0.3) > 15:
            pass
    what = f"wrk -c{load.connections} -t{load.threads}"
    if load.small_cfg:
        what += f" + {load.small_cfg['connections']} conns @ {load.small_cfg['rate']:g} req/s small"
    print(f"[{peer.name}] {load.scenario}: measuring {a.duration:g}s, {what}", flush=True)
    sampler.peak = 0
    cpu = CpuWindow(proc.pid).start()
    sc = _small_client(ctx, load.small_cfg) if load.small_cfg else None
    try:
        wout = _run_wrk(load, a.duration, wrk_timeout)
        sout = serr = ""
        if sc is not None:
            sout, serr = sc.communicate(timeout=a.duration + 120)
    finally:
        if sc is not None:
            _kill_group(sc, grace=1)
    window = cpu.stop()
    peak = sampler.peak
    if proc.poll() is not None:
        raise PeerError(f"server died during the run (code {proc.returncode})")

    wr = parse_wrk(wout)
    secs = wr["duration_us"] / 1e6
    res: dict = {
        "requests": wr["requests"],
        "bytes": wr["bytes"],
        "duration_s": round(secs, 3),
        "mib_s": round(wr["bytes"] / MiB / secs, 1),
        "req_s": round(wr["requests"] / secs, 1),
        "latency_ms": {k: round(v / 1000, 2) for k, v in wr["latency_us"].items()},
        "errors": wr["errors"],
        **window,
        "peak_rss_mib": round(peak / MiB, 1),
        "wrk": {"connections": load.connections, "threads": load.threads, "url": load.url},
        "wrk_output": wout.strip(),
    }
    n = wr["requests"]
    if load.scenario in ("hot", "cold"):
        _per_gb(res, window, wr["bytes"])
    else:
        res["cpu_ms_per_request"] = round(1000 * window["server_cpu_s"] / n, 3) if n else None
        res["user_ms_per_request"] = round(1000 * window["server_user_s"] / n, 3) if n else None
    errors = sum(wr["errors"].values())
    if sc is not None:
        res["small"] = _small_result(sc, sout, serr)
        errors += sum(res["small"]["errors"].values())
    res["errors_total"] = errors
    res["disturbed"] = _disturbed(window)
    line = f"[{peer.name}] {load.scenario}: "
    if load.scenario == "small":
        line += (
            f"{res['req_s']:.0f} req/s, p50/p99 {res['latency_ms']['p50']:.2f}/"
            f"{res['latency_ms']['p99']:.2f} ms, {_fmt(res['cpu_ms_per_request'], 3)} CPU ms/req"
        )
    else:
        line += (
            f"{res['mib_s']:.0f} MiB/s, {_fmt(res['cpu_s_per_gb'], 2)} CPU s/GB, "
            f"peak RSS {res['peak_rss_mib']:.0f} MiB"
        )
        if "small" in res:
            line += (
                f", small p50/p99 {_fmt(res['small']['p50_ms'], 2)}/"
                f"{_fmt(res['small']['p99_ms'], 2)} ms"
            )
    line += f", errors {errors}, other CPU {_fmt(window['other_cpu_pct'], 0)}%"
    print(line, flush=True)
    return res


def run_paced(
    peer: Peer, ctx: Ctx, proc: subprocess.Popen, sampler: RssSampler, load: Load
) -> dict:
    """Scenario paced: the curls start (spread over one transfer period), warm up for
    ``--warmup`` s, then the window: the small client for ``--duration`` s, the bytes the
    curls received and the CPU over exactly that time."""
    a = ctx.args
    assert ctx.curl
    assert load.small_cfg
    target = load.connections * load.rate_mib
    clients = PacedClients(
        ctx.curl,
        load.url,
        load.connections,
        load.rate_mib,
        a.warmup + a.duration,
        ctx.tmp / f"{peer.name}.curl.log",
    )
    print(
        f"[{peer.name}] paced: {load.connections} curl at {load.rate_mib:g} MiB/s each "
        f"({target:g} MiB/s in all), warm-up {a.warmup:g}s",
        flush=True,
    )
    sc = None
    try:
        clients.start()
        time.sleep(max(0.0, a.warmup))
        if proc.poll() is not None:
            raise PeerError(f"server died during the warm-up (code {proc.returncode})")
        print(
            f"[{peer.name}] paced: measuring {a.duration:g}s, {load.connections} curl + "
            f"{load.small_cfg['connections']} conns @ {load.small_cfg['rate']:g} req/s small",
            flush=True,
        )
        sampler.peak = 0
        cpu = CpuWindow(proc.pid, load_cpu=clients.cpu_seconds).start()
        t0, bytes0 = time.monotonic(), clients.written()
        sc = _small_client(ctx, load.small_cfg)
        sout, serr = sc.communicate(timeout=a.duration + 120)
        wall, nbytes = time.monotonic() - t0, clients.written() - bytes0
        window = cpu.stop()  # the curls still run: their CPU is read, not reaped
        peak = sampler.peak
    finally:
        if sc is not None:
            _kill_group(sc, grace=1)
        curl_errors = clients.stop()
    if proc.poll() is not None:
        raise PeerError(f"server died during the run (code {proc.returncode})")

    mib_s = nbytes / MiB / wall if wall else 0.0
    res: dict = {
        "bytes": nbytes,
        "duration_s": round(wall, 3),
        "mib_s": round(mib_s, 1),
        "target_mib_s": round(target, 1),
        "x_target": round(mib_s / target, 3) if target else None,
        "errors": curl_errors,
        **window,
        "peak_rss_mib": round(peak / MiB, 1),
        "curl": {
            "processes": load.connections,
            "rate_mib_s": load.rate_mib,
            "transfers_each": clients.transfers,
            "url": load.url,
            "command": clients.describe(),
        },
    }
    _per_gb(res, window, nbytes)
    res["small"] = _small_result(sc, sout, serr)
    errors = sum(curl_errors.values()) + sum(res["small"]["errors"].values())
    res["errors_total"] = errors
    if curl_errors:
        res["curl_log_tail"] = tail(clients.log, 10)
    res["disturbed"] = _disturbed(window)
    print(
        f"[{peer.name}] paced: {res['mib_s']:.0f} MiB/s ({_fmt(res['x_target'], 2)}x target), "
        f"{_fmt(res['cpu_s_per_gb'], 2)} CPU s/GB, small p50/p99 "
        f"{_fmt(res['small']['p50_ms'], 2)}/{_fmt(res['small']['p99_ms'], 2)} ms, "
        f"peak RSS {res['peak_rss_mib']:.0f} MiB, errors {errors}, "
        f"other CPU {_fmt(window['other_cpu_pct'], 0)}%",
        flush=True,
    )
    return res


def run_quietly(
    peer: Peer, ctx: Ctx, proc: subprocess.Popen, sampler: RssSampler, load: Load
) -> dict:
    """A scenario after the machine went quiet (--wait-quiet), again while disturbed (--retry)."""
    a = ctx.args
    attempts = []
    for attempt in range(1 + max(0, a.retry_disturbed)):
        quiet = wait_quiet(a.wait_quiet) if a.wait_quiet > 0 else None
        run = run_paced if load.scenario == "paced" else run_scenario
        res = run(peer, ctx, proc, sampler, load)
        if quiet is not None:
            res["quiet_before"] = quiet
        attempts.append(res)
        if not res["disturbed"]:
            break
        if attempt < a.retry_disturbed:
            print(f"[{peer.name}] {load.scenario}: disturbed by other programs, again", flush=True)
    best = min(attempts, key=lambda r: (r["other_cpu_pct"] or 0) + (r["steal_pct"] or 0))
    best["attempts"] = len(attempts)
    if len(attempts) > 1:
        best["other_cpu_pct_of_attempts"] = [r["other_cpu_pct"] for r in attempts]
        best["steal_pct_of_attempts"] = [r["steal_pct"] for r in attempts]
    return best


def loads_for(peer: Peer, ctx: Ctx, port: int) -> list[Load]:
    a = ctx.args
    base = f"http://127.0.0.1:{port}/files/"
    small_cfg = {
        "port": port,
        "path": f"/files/{SMALL_NAME}",
        "connections": a.small_connections,
        "rate": a.small_rate,
        "duration": a.duration,
        "expect_len": SMALL_SIZE,
    }
    out = []
    for scenario in peer.scenarios:
        if scenario not in ctx.scenarios:
            continue
        if scenario == "hot":
            out.append(
                Load(
                    "hot",
                    base + LARGE_NAME,
                    a.connections,
                    a.threads,
                    ctx.tmp / "report.lua",
                    small_cfg=small_cfg,
                )
            )
        elif scenario == "paced":
            out.append(
                Load(
                    "paced",
                    base + LARGE_NAME,
                    a.connections,
                    0,
                    None,
                    small_cfg=small_cfg,
                    rate_mib=a.paced_rate,
                )
            )
        elif scenario == "cold":
            out.append(
                Load("cold", base + cold_name(0), a.connections, a.threads, ctx.tmp / "cold.lua")
            )
        else:
            out.append(
                Load(
                    "small",
                    base + SMALL_NAME,
                    a.small_load_connections,
                    a.small_load_threads,
                    ctx.tmp / "report.lua",
                )
            )
    return out


def net_of_small(scenarios: dict) -> None:
    """(a)'s and (a')'s CPU s/GB without their paced small requests, estimated with (c)'s CPU
    per request.

    Their server CPU includes the small-file client's requests (100/s by default): for a
    Python server they cost about a millisecond each, which is a share of the total (at
    (a')'s 400 MiB/s a large one).
    """
    small = scenarios.get("small")
    if not small or small.get("cpu_ms_per_request") is None:
        return
    for name in ("hot", "paced"):
        s = scenarios.get(name)
        if not s or not s["bytes"]:
            continue
        estimate = s["small"]["requests"] * small["cpu_ms_per_request"] / 1000
        s["small_requests_cpu_s_estimate"] = round(estimate, 3)
        net = max(0.0, s["server_cpu_s"] - estimate)
        s["cpu_s_per_gb_net_of_small"] = round(net / (s["bytes"] / GB), 3)


def run_peer(peer: Peer, ctx: Ctx) -> dict:
    res: dict = {"peer": peer.name, "status": "ok", "about": peer.about, "server": peer.server}
    res["middleware"] = peer.middleware
    loads_wanted = [s for s in peer.scenarios if s in ctx.scenarios]
    if not loads_wanted:
        res.update(status="skipped", reason="none of its scenarios selected")
        return res
    port = free_port()
    argv, env, skip = peer_command(peer, ctx, port)
    if skip:
        res.update(status="skipped", reason=skip)
        print(f"[{peer.name}] skipped: {skip}", flush=True)
        return res
    log = ctx.tmp / f"{peer.name}.log"
    res["command"] = " ".join(argv)
    if peer.middleware != "none":
        res["command"] = f"BENCH_MIDDLEWARE={peer.middleware} " + res["command"]
    print(f"[{peer.name}] starting on 127.0.0.1:{port}", flush=True)
    proc = sampler = None
    try:
        with open(log, "wb") as logf:
            proc = _spawn(
                argv,
                env=env,
                cwd=str(APPS),
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        res["startup_s"] = round(wait_ready(proc, port, log), 2)
        names = [SMALL_NAME]
        if "hot" in loads_wanted or "paced" in loads_wanted:
            names.append(LARGE_NAME)
        if "cold" in loads_wanted:
            names += [cold_name(0), cold_name(ctx.args.cold_files - 1)]
        res["verify"] = verify(ctx, port, names)

        sampler = RssSampler(proc.pid, 0.05)
        res["idle_rss_mib"] = round(sampler.sample() / MiB, 1)
        sampler.start()
        res["scenarios"] = {}
        for load in loads_for(peer, ctx, port):
            res["scenarios"][load.scenario] = run_quietly(peer, ctx, proc, sampler, load)
        net_of_small(res["scenarios"])
        log_tail = tail(log, 10)
        if log_tail:
            res["server_log_tail"] = log_tail
    except PeerError as e:
        res.update(status="failed", reason=f"{e}\n{tail(log)}")
        print(f"[{peer.name}] FAILED: {e}", flush=True)
    except (subprocess.TimeoutExpired, OSError, ValueError, KeyError) as e:
        res.update(status="failed", reason=f"{type(e).__name__}: {e}\n{tail(log)}")
        print(f"[{peer.name}] FAILED: {type(e).__name__}: {e}", flush=True)
    finally:
        if sampler is not None:
            sampler.stop()
        if proc is not None:
            _kill_group(proc)
    return res


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


def _fmt(v, nd=1) -> str:
    if v is None:
        return "n/a"
    return f"{v:.{nd}f}"


def scenario_of(results: dict[str, dict], peer: str, scenario: str) -> dict | None:
    r = results.get(peer)
    if not r or r.get("status") != "ok":
        return None
    return r.get("scenarios", {}).get(scenario)


def _mib_s(s: dict) -> float:
    return s["mib_s"]


def _cpu_gb(s: dict) -> float | None:
    return s.get("cpu_s_per_gb")


def _small_p99(s: dict) -> float | None:
    return (s.get("small") or {}).get("p99_ms")


def _req_s(s: dict) -> float:
    return s["req_s"]


def _peak(s: dict) -> float:
    return s["peak_rss_mib"]


#: (scenario, peer, peer it is divided by, figure, target, comparison)
CHECKS: tuple[tuple[str, str, str, str, float, str], ...] = (
    ("hot", "fileresponse-worker", "nginx", "throughput", 0.9, ">="),
    ("cold", "fileresponse-worker", "nginx", "throughput", 0.9, ">="),
    ("hot", "fileresponse-worker", "nginx", "CPU s/GB", 1.5, "<="),
    ("cold", "fileresponse-worker", "nginx", "CPU s/GB", 1.5, "<="),
    ("hot", "fileresponse-worker", "starlette-uvicorn", "throughput", 3.0, ">="),
    ("cold", "fileresponse-worker", "starlette-uvicorn", "throughput", 3.0, ">="),
    ("hot", "fileresponse-worker", "starlette-uvicorn", "small-file p99 during load", 1.0, "<="),
    ("paced", "fileresponse-worker", "starlette-uvicorn", "small-file p99 during load", 1.0, "<="),
    ("small", "fastpath-worker", "starlette-uvicorn", "req/s", 1.0, ">="),
    ("small", "fastpath-uvicorn", "starlette-uvicorn", "req/s", 1.0, ">="),
    ("small", "fileresponse-worker", "django-floor-worker", "req/s", 0.9, ">="),
    ("small", "fileresponse-worker-mw", "django-floor-worker-mw", "req/s", 0.9, ">="),
    ("small", "fileresponse-uvicorn", "django-floor-uvicorn", "req/s", 0.9, ">="),
    ("small", "fileresponse-uvicorn-mw", "django-floor-uvicorn-mw", "req/s", 0.9, ">="),
    # the targets of stock uvicorn, from before the worker
    ("hot", "fileresponse-uvicorn", "starlette-uvicorn", "throughput", 2.0, ">="),
    ("hot", "fileresponse-uvicorn", "django-static-serve", "throughput", 1.0, ">="),
    ("hot", "fileresponse-uvicorn", "starlette-uvicorn", "small-file p99 during load", 2.0, "<="),
)
FIGURES = {
    "throughput": _mib_s,
    "CPU s/GB": _cpu_gb,
    "small-file p99 during load": _small_p99,
    "req/s": _req_s,
}
RSS_CHECKED = ("fileresponse-worker", "fileresponse-uvicorn", "fileresponse-granian")


def compute_checks(results: dict[str, dict]) -> list[dict]:
    out = []
    for scenario, num, den, figure, target, kind in CHECKS:
        label = f"({SCENARIO_LETTERS[scenario]}) {num} / {den} {figure}"
        check = {
            "check": label,
            "scenario": scenario,
            "peer": num,
            "versus": den,
            "figure": figure,
            "value": None,
            "target": f"{kind} {target:g}",
            "pass": None,
        }
        a, b = scenario_of(results, num, scenario), scenario_of(results, den, scenario)
        if a is not None and b is not None:
            x, y = FIGURES[figure](a), FIGURES[figure](b)
            if x is not None and y:
                v = x / y
                check["value"] = round(v, 2)
                check["pass"] = v >= target if kind == ">=" else v <= target
        out.append(check)
    for name in RSS_CHECKED:
        for scenario in ("hot", "cold"):
            s = scenario_of(results, name, scenario)
            out.append(
                {
                    "check": f"({SCENARIO_LETTERS[scenario]}) {name} peak RSS MiB",
                    "scenario": scenario,
                    "peer": name,
                    "figure": "peak RSS MiB",
                    "value": None if s is None else _peak(s),
                    "target": f"< {RSS_LIMIT_MIB:g}",
                    "pass": None if s is None else _peak(s) < RSS_LIMIT_MIB,
                }
            )
    return out


def _ratio(x, y, nd=2) -> str:
    if x is None or not y:
        return ""
    return f"{x / y:.{nd}f}"


def _errors_text(s: dict) -> str:
    detail = {k: v for k, v in s["errors"].items() if v}
    detail.update({f"small_{k}": v for k, v in (s.get("small") or {}).get("errors", {}).items()})
    text = str(s["errors_total"])
    if detail:
        text += " (" + ", ".join(f"{k}={v}" for k, v in detail.items() if v) + ")"
    return text


def _cpu_split(s: dict) -> str:
    total, user, system = s.get("cpu_s_per_gb"), s.get("user_s_per_gb"), s.get("system_s_per_gb")
    if total is None:
        return "n/a"
    if user is None or system is None:
        return f"{total:.2f}"
    return f"{total:.2f} ({user:.2f} + {system:.2f})"


def _other(s: dict) -> str:
    text = _fmt(s.get("other_cpu_pct"), 0)
    if (s.get("steal_pct") or 0) >= 5:
        text += f" (steal {s['steal_pct']:.0f})"
    return f"**{text}**" if s.get("disturbed") else text


def _not_ok_row(r: dict, columns: int) -> str:
    reason = (r.get("reason") or "").splitlines()[0] if r.get("reason") else ""
    return f"| {r['peer']} | {r['status']}: {reason} |" + " |" * (columns - 2)


def _paced_section(report: dict, ng: dict | None) -> list[str]:
    m = report["meta"]
    skipped = (m.get("skipped_scenarios") or {}).get("paced")
    if skipped:
        return [f"## {SCENARIO_TITLES['paced']}", "", f"Skipped: {skipped}.", ""]
    if "paced" not in m["scenarios"]:
        return []
    rate = m["paced_rate_mib"]
    lines = [
        f"## {SCENARIO_TITLES['paced']}",
        "",
        f"{m['connections']} curl processes, each downloading the {m['large_size_mib']} MiB "
        f"file again and again on one keep-alive connection at {rate:g} MiB/s (`--limit-rate`, "
        "and `--rate`, transfers started per hour, so that the average holds): "
        f"{m['connections'] * rate:g} MiB/s in all, the same load for every peer, where (a) "
        "lets each push what it can. During it, the paced client of (a) fetches the "
        f"{m['small_size_kib']} KiB file ({m['small_connections']} connections, "
        f"{m['small_rate']:g} req/s). MiB/s: what the curl processes received over the window "
        "(the bodies they wrote to /dev/null, their /proc/<pid>/io wchar); a peer that cannot "
        'keep up falls short of the target. Server CPU includes the small requests; "without '
        "small req.\" as in (a). Errors: the small client's, and curl exit codes other than "
        "from being killed at the end.",
        "",
        "| peer | MiB/s | x target | CPU s/GB (user + sys) | CPU/GB x nginx "
        "| without small req. (est.) | server CPU % | small p50 ms | small p99 ms "
        "| small req/s | peak RSS MiB | other CPU % | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["peers"]:
        if "paced" not in PEER_BY_NAME[r["peer"]].scenarios:
            continue
        if r["status"] != "ok":
            lines.append(_not_ok_row(r, 13))
            continue
        s = r["scenarios"].get("paced")
        if s is None:
            continue
        sm = s["small"]
        row = [
            r["peer"],
            f"{s['mib_s']:.0f}",
            _fmt(s.get("x_target"), 2),
            _cpu_split(s),
            _ratio(s["cpu_s_per_gb"], ng and ng["cpu_s_per_gb"]),
            _fmt(s.get("cpu_s_per_gb_net_of_small"), 2),
            _fmt(s["server_cpu_pct"], 0),
            _fmt(sm["p50_ms"], 2),
            _fmt(sm["p99_ms"], 2),
            _fmt(sm["rate_achieved"], 0),
            f"{s['peak_rss_mib']:.0f}",
            _other(s),
            _errors_text(s),
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    return lines


def markdown(report: dict) -> str:
    m = report["meta"]
    results = {r["peer"]: r for r in report["peers"]}
    lines = [
        "# serve_files benchmark",
        "",
        f"- date: {m['date']}  host: {m['host']} ({m['cpus']} CPUs, "
        f"{m['memory_gib']} GiB RAM)  python {m['python']}",
        f"- {m['duration_s']:g} s per scenario and peer, after {m['warmup_s']:g} s of warm-up; "
        "one worker per peer, one peer at a time",
        f"- load average before: {m['loadavg_before']}  after: {m['loadavg_after']}"
        + (
            "  **(disturbed: other programs or the hypervisor took more than "
            f"{FOREIGN_CPU_LIMIT:g}% of a core while measuring "
            + ", ".join(m.get("disturbed_peers", []))
            + ": those figures are indicative)**"
            if m["busy"]
            else "  (no other program used the CPU while measuring)"
        ),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v),
        "- server CPU: user + system time of the server's process tree over the window; "
        "CPU s/GB: that time per 10^9 bytes received by wrk (by the curl processes in (a')). "
        "other CPU %: the machine's busy time not spent by the server, wrk, curl, the "
        "small-file client or the script (100 = one "
        f"core; bold above {FOREIGN_CPU_LIMIT:g}: another program competed; steal: time the "
        "hypervisor gave to other guests, shown from 5)",
        "",
    ]
    nginx = {s: scenario_of(results, "nginx", s) for s in ("hot", "paced", "cold")}
    for scenario in ("hot", "paced", "cold"):
        if scenario == "paced":
            lines += _paced_section(report, nginx["paced"])
            continue
        if scenario not in m["scenarios"]:
            continue
        if scenario == "hot":
            lines += [
                f"## {SCENARIO_TITLES['hot']}",
                "",
                f"wrk -c{m['connections']} -t{m['threads']} downloading one "
                f"{m['large_size_mib']} MiB file; during it, a paced client fetches a "
                f"{m['small_size_kib']} KiB file ({m['small_connections']} keep-alive "
                f"connections, {m['small_rate']:g} req/s in total), its latency from request "
                'to last byte. Server CPU includes those small requests; "without small req." '
                "takes them out, at (c)'s CPU per request (an estimate).",
                "",
                "| peer | MiB/s | x nginx | req/s | CPU s/GB (user + sys) | CPU/GB x nginx "
                "| without small req. (est.) | server CPU % | large p50 ms | small p50 ms "
                "| small p99 ms | small req/s | peak RSS MiB | other CPU % | errors |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            cols = 15
        else:
            lines += [
                f"## {SCENARIO_TITLES['cold']}",
                "",
                f"wrk -c{m['connections']} -t{m['threads']}, each request the next of "
                f"{m['cold_files']} distinct {m['large_size_mib']} MiB files "
                f"({m['cold_files'] * m['large_size_mib'] / 1024:.2f} GiB, generated into the "
                "temp dir; with "
                f"{m['memory_gib']} GiB of RAM they stay in the page cache, so this measures "
                "many open files and page-cache lookups, not the disk).",
                "",
                "| peer | MiB/s | x nginx | req/s | CPU s/GB (user + sys) | CPU/GB x nginx "
                "| server CPU % | p50 ms | peak RSS MiB | other CPU % | errors |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            cols = 11
        ng = nginx[scenario]
        for r in report["peers"]:
            if scenario not in PEER_BY_NAME[r["peer"]].scenarios:
                continue
            if r["status"] != "ok":
                lines.append(_not_ok_row(r, cols))
                continue
            s = r["scenarios"].get(scenario)
            if s is None:
                continue
            row = [
                r["peer"],
                f"{s['mib_s']:.0f}",
                _ratio(s["mib_s"], ng and ng["mib_s"]),
                f"{s['req_s']:.1f}",
                _cpu_split(s),
                _ratio(s["cpu_s_per_gb"], ng and ng["cpu_s_per_gb"]),
            ]
            if scenario == "hot":
                row.append(_fmt(s.get("cpu_s_per_gb_net_of_small"), 2))
            row += [
                _fmt(s["server_cpu_pct"], 0),
                _fmt(s["latency_ms"]["p50"], 0),
            ]
            if scenario == "hot":
                sm = s["small"]
                row += [
                    _fmt(sm["p50_ms"], 2),
                    _fmt(sm["p99_ms"], 2),
                    _fmt(sm["rate_achieved"], 0),
                ]
            row += [f"{s['peak_rss_mib']:.0f}", _other(s), _errors_text(s)]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    if "small" in m["scenarios"]:
        st = scenario_of(results, "starlette-uvicorn", "small")
        lines += [
            f"## {SCENARIO_TITLES['small']}",
            "",
            f"wrk -c{m['small_load_connections']} -t{m['small_load_threads']} on one "
            f"{m['small_size_kib']} KiB file, nothing else running; latencies from wrk's "
            "histogram. The example's middlewares: "
            + ", ".join(f"`{x}`" for x in m["example_middleware"])
            + ".",
            "",
            "| peer | what | req/s | x starlette-uvicorn | p50 ms | p99 ms | server CPU % "
            "| CPU ms/request (user) | other CPU % | errors |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in report["peers"]:
            if "small" not in PEER_BY_NAME[r["peer"]].scenarios:
                continue
            if r["status"] != "ok":
                lines.append(_not_ok_row(r, 10))
                continue
            s = r["scenarios"].get("small")
            if s is None:
                continue
            row = [
                r["peer"],
                r["about"],
                f"{s['req_s']:.0f}",
                _ratio(s["req_s"], st and st["req_s"]),
                _fmt(s["latency_ms"]["p50"], 2),
                _fmt(s["latency_ms"]["p99"], 2),
                _fmt(s["server_cpu_pct"], 0),
                f"{_fmt(s['cpu_ms_per_request'], 3)} ({_fmt(s.get('user_ms_per_request'), 3)})",
                _other(s),
                _errors_text(s),
            ]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    lines += ["## Checks", "", "| check | value | target | result |", "|---|---:|---|---|"]
    for c in report["checks"]:
        res = {True: "pass", False: "**FAIL**", None: "n/a"}[c["pass"]]
        lines.append(f"| {c['check']} | {_fmt(c['value'], 2)} | {c['target']} | {res} |")
    lines.append("")
    return "\n".join(lines)


def _color(name: str) -> str:
    if name.startswith(("fileresponse", "fastpath")):
        return "#2a7ab9"
    if name == "nginx":
        return "#2e8b57"
    if name.startswith("django-floor"):
        return "#d4a017"
    return "#999999"


def plot(report: dict, path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed"
    m = report["meta"]

    def series(scenario, key):
        out = []
        for r in report["peers"]:
            s = (r.get("scenarios") or {}).get(scenario) if r["status"] == "ok" else None
            if s is not None and key(s) is not None:
                out.append((r["peer"], key(s)))
        return out

    paced_target = (m.get("paced_rate_mib") or 0) * m["connections"]
    rows = [
        [
            ("hot", "(a) hot 10 MiB file: MiB/s (higher is better)", _mib_s, "%.0f"),
            ("cold", f"(b) {m['cold_files']} distinct 10 MiB files: MiB/s", _mib_s, "%.0f"),
            ("small", "(c) 4 KiB file alone: requests/s", _req_s, "%.0f"),
        ],
        [
            ("hot", "(a) server CPU s per GB (lower is better)", _cpu_gb, "%.2f"),
            ("cold", "(b) server CPU s per GB (lower is better)", _cpu_gb, "%.2f"),
            ("small", "(c) p99 ms (lower is better)", lambda s: s["latency_ms"]["p99"], "%.1f"),
        ],
        [
            ("paced", f"(a') paced, {paced_target:g} MiB/s wanted: MiB/s received", _mib_s, "%.0f"),
            ("paced", "(a') server CPU s per GB (lower is better)", _cpu_gb, "%.2f"),
            ("paced", "(a') 4 KiB file during it: p99 ms (lower is better)", _small_p99, "%.1f"),
        ],
    ]
    # a row without any figure (old results without paced, a subset of the scenarios) goes
    rows = [row for row in rows if any(series(p[0], p[2]) for p in row)]
    if not rows:
        return "no peer produced results"
    fig, axes = plt.subplots(len(rows), 3, figsize=(18, 5 * len(rows)), squeeze=False)
    panels = [panel for row in rows for panel in row]
    for ax, (scenario, title, key, fmt) in zip(axes.flat, panels, strict=True):
        data = series(scenario, key)
        if not data:
            ax.set_visible(False)
            continue
        names = [n for n, _ in data]
        vals = [v for _, v in data]
        bars = ax.barh(names, vals, color=[_color(n) for n in names])
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.bar_label(bars, fmt=fmt, fontsize=8, padding=2)
        ax.tick_params(axis="y", labelsize=8)
        if min(vals) > 0 and max(vals) / min(vals) > 30:
            ax.set_xscale("log")
            ax.set_title(title + ", log scale", fontsize=10)
        else:
            ax.margins(x=0.15)
    busy = " (busy machine)" if m["busy"] else ""
    fig.suptitle(
        f"serve_files: one worker each, {m['duration_s']:g} s per scenario, {m['cpus']} CPUs{busy}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def parse_peers(spec: str | None, order: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """Peers by number, name or unique prefix, in the order given (default: all)."""
    order = PEER_ORDER if order is None else order
    if not spec:
        return list(order)
    out = []
    for tok in spec.replace(" ", "").split(","):
        if not tok:
            continue
        if tok.isdigit() and 1 <= int(tok) <= len(order):
            name = order[int(tok) - 1]
        elif tok in order:
            name = tok
        else:
            matches = [p for p in order if p.startswith(tok)]
            if len(matches) != 1:
                raise SystemExit(
                    f"unknown peer {tok!r}; choose from 1-{len(order)} or {', '.join(order)}"
                )
            name = matches[0]
        if name not in out:
            out.append(name)
    return out


def parse_scenarios(spec: str | None) -> tuple[str, ...]:
    if not spec:
        return SCENARIOS
    wanted = {tok.strip() for tok in spec.split(",") if tok.strip()}
    unknown = wanted - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenario(s) {sorted(unknown)}; choose from {SCENARIOS}")
    return tuple(s for s in SCENARIOS if s in wanted)


def install_tools() -> None:
    if os.geteuid() != 0:
        raise SystemExit("--install needs root (it runs apt-get install -y wrk nginx curl)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "wrk", "nginx", "curl"], check=True, env=env)


def make_files(docroot: Path, cold_files: int) -> tuple[dict[str, str], dict[str, int]]:
    """The hot, small and cold files; their sha256 and sizes. Written to disk before the runs."""
    rnd = random.Random(20240601)
    large = rnd.randbytes(LARGE_SIZE)
    small = rnd.randbytes(SMALL_SIZE)
    shas, sizes = {}, {}

    def write(name: str, data: bytes) -> None:
        path = docroot / name
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # no writeback during the measurements
        shas[name] = hashlib.sha256(data).hexdigest()
        sizes[name] = len(data)

    write(LARGE_NAME, large)
    write(SMALL_NAME, small)
    (docroot / COLD_DIR).mkdir()
    # distinct contents (and pages): the large file rotated by a different amount each
    block = rnd.randbytes(LARGE_SIZE)
    for i in range(cold_files):
        cut = (i * 104729) % LARGE_SIZE
        write(cold_name(i), block[cut:] + block[:cut])
    return shas, sizes


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--_small-client"]:
        return small_client_entry(argv[1])

    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Peers: " + ", ".join(f"{i}={n}" for i, n in enumerate(PEER_ORDER, 1)),
    )
    p.add_argument(
        "--duration",
        type=float,
        default=15.0,
        help="measured seconds per scenario and peer (default 15)",
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="warm-up seconds per scenario and peer (default 3; 1 with --quick)",
    )
    p.add_argument(
        "--connections",
        type=int,
        default=50,
        help="wrk connections for the 10 MiB files, (a) and (b), and curl processes of (a') "
        "(default 50)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=min(2, os.cpu_count() or 2),
        help="wrk threads for (a) and (b) (default 2)",
    )
    p.add_argument(
        "--cold-files",
        type=int,
        default=100,
        help="distinct 10 MiB files of (b) (default 100)",
    )
    p.add_argument(
        "--small-connections",
        type=int,
        default=5,
        help="paced small-file client connections during (a) (default 5)",
    )
    p.add_argument(
        "--small-rate",
        type=float,
        default=100.0,
        help="paced small-file requests/s in total during (a) (default 100)",
    )
    p.add_argument(
        "--paced-rate",
        type=float,
        default=8.0,
        metavar="MIB",
        help="MiB/s of each curl download loop of (a') (default 8: 400 MiB/s in all with 50 "
        "connections, below the slowest peer's rate in (a))",
    )
    p.add_argument(
        "--small-load-connections",
        type=int,
        default=16,
        help="wrk connections of (c) (default 16)",
    )
    p.add_argument(
        "--small-load-threads",
        type=int,
        default=1,
        help="wrk threads of (c) (default 1: one core for wrk, one for the server)",
    )
    p.add_argument("--peers", help="comma list of peer numbers or names (default all)")
    p.add_argument("--scenarios", help="comma list of hot,paced,cold,small (default all)")
    p.add_argument("--quick", action="store_true", help="3 s per scenario, 1 s warm-up")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each scenario, wait up to S s until the machine is idle (default 0: do not)",
    )
    p.add_argument(
        "--retry-disturbed",
        type=int,
        default=0,
        metavar="N",
        help=f"measure a scenario again, up to N times, while other programs used more than "
        f"{FOREIGN_CPU_LIMIT:g}%% of a core during it (default 0); the least disturbed is kept",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=HERE / "results",
        help="output directory (default bench/results)",
    )
    p.add_argument(
        "--install",
        action="store_true",
        help="apt-get install -y wrk nginx curl first (root only)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a target check fails")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="no run: serve_files.md and .png again from --out's serve_files.json",
    )
    a = p.parse_args(argv)
    if a.report_only:
        return write_outputs(json.loads((a.out / "serve_files.json").read_text()), a)
    if a.quick:
        a.duration = 3.0
    if a.warmup is None:
        a.warmup = 1.0 if a.quick else 3.0
    if a.cold_files < 1:
        raise SystemExit("--cold-files must be at least 1")
    if a.paced_rate <= 0:
        raise SystemExit("--paced-rate must be above 0")
    peers = parse_peers(a.peers)
    scenarios = parse_scenarios(a.scenarios)

    if a.install:
        install_tools()
    if not shutil.which("wrk"):
        raise SystemExit(
            "error: wrk is not on PATH. Install it (Debian/Ubuntu: apt-get install -y wrk), "
            "or run this script as root with --install."
        )
    try:
        import psutil
    except ImportError:
        raise SystemExit("error: psutil is not installed (pip install psutil)") from None
    if any(PEER_BY_NAME[n].server != "nginx" for n in peers) and not have_module("uvicorn"):
        raise SystemExit("error: uvicorn is not installed (pip install 'uvicorn[standard]')")
    skipped_scenarios = {}
    if "paced" in scenarios:
        why = curl_missing()
        if why:
            print(f"warning: scenario paced skipped: {why}", flush=True)
            skipped_scenarios["paced"] = why
            scenarios = tuple(s for s in scenarios if s != "paced")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_signal)
    with contextlib.suppress(AttributeError, ValueError):
        signal.signal(signal.SIGHUP, _on_signal)

    uvfast = []
    if have_module("httptools"):
        uvfast += ["--http", "httptools"]
    if have_module("uvloop"):
        uvfast += ["--loop", "uvloop"]

    commit = source_commit()
    load_before = os.getloadavg()
    busy = load_before[0] >= 1.0
    if busy:
        print(
            f"warning: load average {load_before[0]:.2f} >= 1.0, figures will be noisy", flush=True
        )

    tmp = Path(tempfile.mkdtemp(prefix="fr-bench-"))
    results: dict[str, dict] = {}
    try:
        docroot = tmp / "root"
        docroot.mkdir()
        if "cold" in scenarios:
            print(f"writing {a.cold_files} x 10 MiB files into {docroot}", flush=True)
        shas, sizes = make_files(docroot, a.cold_files if "cold" in scenarios else 1)
        os.chmod(tmp, 0o755)
        (tmp / "report.lua").write_text(WRK_DONE_LUA)
        (tmp / "cold.lua").write_text(
            WRK_COLD_LUA.replace("__COUNT__", str(a.cold_files)).replace("__DIR__", COLD_DIR)
            + WRK_DONE_LUA
        )
        ctx = Ctx(
            tmp=tmp,
            docroot=docroot,
            shas=shas,
            sizes=sizes,
            args=a,
            scenarios=scenarios,
            uvicorn_fast=uvfast,
            fast_path=fast_path_missing(),
            curl=shutil.which("curl") if "paced" in scenarios else None,
        )
        for i, name in enumerate(peers):
            if i:
                time.sleep(1.0)
            results[name] = run_peer(PEER_BY_NAME[name], ctx)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping servers", file=sys.stderr, flush=True)
        _kill_all_live()
        return 130
    finally:
        _kill_all_live()
        shutil.rmtree(tmp, ignore_errors=True)

    load_after = os.getloadavg()
    fr_version = dist_version("fileresponse")
    if fr_version is None:
        with contextlib.suppress(Exception):
            sys.path.insert(0, str(REPO))
            import fileresponse

            fr_version = getattr(fileresponse, "__version__", "source tree")
    sys.path.insert(0, str(APPS))
    from _common import EXAMPLE_MIDDLEWARE

    disturbed = sorted(
        {
            r["peer"]
            for r in results.values()
            if r.get("status") == "ok"
            and any(s.get("disturbed") for s in r.get("scenarios", {}).values())
        }
    )
    report = {
        "meta": {
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30),
            "python": platform.python_version(),
            "scenarios": list(scenarios),
            "skipped_scenarios": skipped_scenarios,
            "duration_s": a.duration,
            "warmup_s": a.warmup,
            "connections": a.connections,
            "threads": max(1, min(a.threads, a.connections)),
            "cold_files": a.cold_files,
            "small_connections": a.small_connections,
            "small_rate": a.small_rate,
            "paced_rate_mib": a.paced_rate,
            "paced_target_mib_s": a.paced_rate * a.connections,
            "small_load_connections": a.small_load_connections,
            "small_load_threads": max(1, min(a.small_load_threads, a.small_load_connections)),
            "large_size_mib": LARGE_SIZE // MiB,
            "small_size_kib": SMALL_SIZE // 1024,
            "uvicorn_flags": uvfast,
            "worker": f"gunicorn --workers 1 -k {WORKER_CLASS}",
            "example_middleware": EXAMPLE_MIDDLEWARE,
            "fast_path": ctx.fast_path or "FILERESPONSE['FAST_PATHS']",
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
            "wait_quiet_s": a.wait_quiet,
            "retry_disturbed": a.retry_disturbed,
            "loadavg_busy": busy,
            "busy": bool(disturbed),
            "disturbed_peers": disturbed,
            "versions": {
                "fileresponse": fr_version,
                "fileresponse source": commit,
                "django": dist_version("django"),
                "uvicorn": dist_version("uvicorn"),
                "gunicorn": dist_version("gunicorn"),
                "uvicorn-worker": dist_version("uvicorn-worker"),
                "granian": dist_version("granian"),
                "starlette": dist_version("starlette"),
                "uvloop": dist_version("uvloop"),
                "httptools": dist_version("httptools"),
                "nginx": _short(tool_version(["nginx", "-v"]), "nginx/"),
                "wrk": _short(tool_version(["wrk", "-v"]), "wrk "),
                "curl": _short(tool_version(["curl", "--version"]), "curl "),
            },
        },
        "peers": [results[n] for n in peers],
    }
    return write_outputs(report, a)


def write_outputs(report: dict, a: argparse.Namespace) -> int:
    """serve_files.json, .md and .png in ``a.out``; the exit code."""
    disturbed = []
    for r in report["peers"]:
        letters = [
            SCENARIO_LETTERS.get(name, name)
            for name, s in r.get("scenarios", {}).items()
            if r.get("status") == "ok" and s.get("disturbed")
        ]
        if letters:
            disturbed.append(f"{r['peer']} ({', '.join(letters)})")
    report["meta"]["disturbed_peers"] = disturbed
    report["meta"]["busy"] = bool(disturbed)
    report["checks"] = compute_checks({r["peer"]: r for r in report["peers"]})
    md = markdown(report)
    print()
    print(md)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "serve_files.json").write_text(json.dumps(report, indent=2) + "\n")
    (a.out / "serve_files.md").write_text(md)
    err = plot(report, a.out / "serve_files.png")
    if err:
        print(f"note: no chart: {err}", file=sys.stderr)
    print(
        f"wrote {a.out / 'serve_files.json'}, {a.out / 'serve_files.md'}"
        + ("" if err else f", {a.out / 'serve_files.png'}")
    )

    failed = [r["peer"] for r in report["peers"] if r["status"] == "failed"]
    if failed:
        print(f"failed peers: {', '.join(failed)}", file=sys.stderr)
        return 2
    if a.strict and any(c["pass"] is False for c in report["checks"]):
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        _kill_all_live()
        sys.exit(130)
