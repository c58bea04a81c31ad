#!/usr/bin/env python3
"""Side-by-side file serving benchmark for fileresponse.

Peers (one worker each, all serving the same generated files from one temp dir):

  1 fileresponse-uvicorn   Django + fileresponse.asgi.get_asgi_application()
                           + fileresponse.views.serve, under uvicorn
  2 django-uvicorn         Django stock: django.core.asgi + django.views.static.serve
                           (django.http.FileResponse), under uvicorn
  3 starlette-uvicorn      Starlette + starlette.responses.FileResponse, under uvicorn
  4 fileresponse-granian   peer 1's Django site under granian --interface asgi
                           (granian offers http.response.pathsend)
  5 nginx                  nginx, sendfile on, 1 worker (skipped when nginx is not installed)

Load per peer: wrk with N connections (default 50) downloading the 10 MiB file for a fixed
duration, and at the same time a paced asyncio raw-socket client (default 5 connections,
100 req/s in total) fetching the 4 KiB file, whose latencies give p50/p99.
Peak RSS of the server process tree (process + children) is sampled every 50 ms.

Peers run one after the other: start, check bytes (sha256 of a full download, status 200),
warm up, measure, stop. Results: a markdown table on stdout, and in --out (default
bench/results/): serve_files.json, serve_files.md, serve_files.png.

Usage:
  python bench/serve_files.py                  # all peers, 15 s each
  python bench/serve_files.py --quick          # 3 s each, smoke run
  python bench/serve_files.py --peers 2,3,5    # subset, by number or name
  sudo python bench/serve_files.py --install   # apt-get install wrk nginx first (root only)
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
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
APPS = HERE / "apps"
MiB = 1024 * 1024

LARGE_NAME = "large.bin"
SMALL_NAME = "small.bin"
LARGE_SIZE = 10 * MiB
SMALL_SIZE = 4 * 1024

PEER_ORDER = [
    "fileresponse-uvicorn",
    "django-uvicorn",
    "starlette-uvicorn",
    "fileresponse-granian",
    "nginx",
]

# Targets checked in the report (see README.md).
RSS_LIMIT_MIB = 128.0


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
# wrk
# --------------------------------------------------------------------------------------

WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
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


# --------------------------------------------------------------------------------------
# peers
# --------------------------------------------------------------------------------------


@dataclass
class Ctx:
    tmp: Path
    docroot: Path
    large_sha: str
    small_sha: str
    args: argparse.Namespace
    python: str = sys.executable
    uvicorn_fast: list[str] = field(default_factory=list)


def base_env(docroot: Path) -> dict:
    env = dict(os.environ)
    parts = [str(APPS), str(REPO)]
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["BENCH_DOC_ROOT"] = str(docroot)
    env["PYTHONUNBUFFERED"] = "1"
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


def peer_command(name: str, ctx: Ctx, port: int) -> tuple[list[str], dict, str | None]:
    """Return (argv, env, skip_reason)."""
    env = base_env(ctx.docroot)
    if name == "fileresponse-uvicorn":
        env["DJANGO_SETTINGS_MODULE"] = "fr_site.settings"
        return uvicorn_cmd(ctx, "fr_site.asgi:application", port), env, None
    if name == "django-uvicorn":
        env["DJANGO_SETTINGS_MODULE"] = "stock_site.settings"
        return uvicorn_cmd(ctx, "stock_site.asgi:application", port), env, None
    if name == "starlette-uvicorn":
        if not have_module("starlette"):
            return [], env, "starlette is not installed"
        return uvicorn_cmd(ctx, "starlette_site:app", port), env, None
    if name == "fileresponse-granian":
        if not have_module("granian"):
            return [], env, "granian is not installed"
        env["DJANGO_SETTINGS_MODULE"] = "fr_site.settings"
        return (
            [
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
                "fr_site.asgi:application",
            ],
            env,
            None,
        )
    if name == "nginx":
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
    raise ValueError(name)


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


def verify(ctx: Ctx, port: int) -> dict:
    out = {}
    for name, sha, size in (
        (LARGE_NAME, ctx.large_sha, LARGE_SIZE),
        (SMALL_NAME, ctx.small_sha, SMALL_SIZE),
    ):
        status, headers, body = http_get(port, f"/files/{name}")
        got = hashlib.sha256(body).hexdigest()
        if status != 200:
            raise PeerError(f"GET /files/{name}: status {status}, expected 200")
        if len(body) != size or got != sha:
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


def run_peer(name: str, ctx: Ctx) -> dict:
    a = ctx.args
    res: dict = {"peer": name, "status": "ok"}
    port = free_port()
    argv, env, skip = peer_command(name, ctx, port)
    if skip:
        res.update(status="skipped", reason=skip)
        print(f"[{name}] skipped: {skip}", flush=True)
        return res
    log = ctx.tmp / f"{name}.log"
    res["command"] = " ".join(argv)
    print(f"[{name}] starting on 127.0.0.1:{port}", flush=True)
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
        res["verify"] = verify(ctx, port)

        sampler = RssSampler(proc.pid, 0.05)
        res["idle_rss_mib"] = round(sampler.sample() / MiB, 1)
        sampler.peak = 0
        sampler.start()

        url = f"http://127.0.0.1:{port}/files/{LARGE_NAME}"
        lua = ctx.tmp / "report.lua"
        wrk_timeout = max(30, int(a.duration) * 2)
        if a.warmup > 0:
            print(f"[{name}] warm-up {a.warmup:g}s", flush=True)
            w = _spawn(
                wrk_cmd(url, a.connections, a.threads, a.warmup, lua, wrk_timeout),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                w.communicate(timeout=a.warmup + 60)
            finally:
                _kill_group(w, grace=1)
            # let the server finish responses whose clients went away with the warm-up wrk
            t0 = time.monotonic()
            while time.monotonic() - t0 < 10 and sampler.tree_cpu_percent(0.3) > 15:
                pass
        res["warmup_peak_rss_mib"] = round(sampler.peak / MiB, 1)
        sampler.peak = 0

        print(
            f"[{name}] measuring {a.duration:g}s: wrk -c{a.connections} large + "
            f"{a.small_connections} conns @ {a.small_rate:g} req/s small",
            flush=True,
        )
        small_cfg = {
            "port": port,
            "path": f"/files/{SMALL_NAME}",
            "connections": a.small_connections,
            "rate": a.small_rate,
            "duration": a.duration,
            "expect_len": SMALL_SIZE,
        }
        cpu0 = _tree_cpu_seconds(proc.pid)
        t_start = time.monotonic()
        sc = _spawn(
            [ctx.python, str(Path(__file__).resolve()), "--_small-client", json.dumps(small_cfg)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        w = _spawn(
            wrk_cmd(url, a.connections, a.threads, a.duration, lua, wrk_timeout),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wout, _ = w.communicate(timeout=a.duration + 120)
            sout, serr = sc.communicate(timeout=a.duration + 120)
        finally:
            _kill_group(w, grace=1)
            _kill_group(sc, grace=1)
        wall = time.monotonic() - t_start
        cpu1 = _tree_cpu_seconds(proc.pid)
        sampler.stop()
        if proc.poll() is not None:
            raise PeerError(f"server died during the run (code {proc.returncode}):\n{tail(log)}")

        wr = parse_wrk(wout)
        secs = wr["duration_us"] / 1e6
        res["large"] = {
            "requests": wr["requests"],
            "bytes": wr["bytes"],
            "duration_s": round(secs, 3),
            "mib_s": round(wr["bytes"] / MiB / secs, 1),
            "req_s": round(wr["requests"] / secs, 2),
            "latency_ms": {k: round(v / 1000, 1) for k, v in wr["latency_us"].items()},
            "errors": wr["errors"],
            "wrk_output": wout.strip(),
        }
        if sc.returncode != 0:
            raise PeerError(f"small-file client failed (code {sc.returncode}):\n{serr[-2000:]}")
        sm = json.loads(sout.strip().splitlines()[-1])
        res["small"] = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in sm.items()}
        res["peak_rss_mib"] = round(max(sampler.peak, 0) / MiB, 1)
        res["rss_samples"] = sampler.samples
        res["server_cpu_pct"] = round(100 * (cpu1 - cpu0) / wall, 0) if wall else None
        werr = sum(wr["errors"].values())
        serr_n = sum(sm["errors"].values())
        res["errors_total"] = werr + serr_n
        log_tail = tail(log, 10)
        if log_tail:
            res["server_log_tail"] = log_tail
        print(
            f"[{name}] {res['large']['mib_s']:.1f} MiB/s, {res['large']['req_s']:.1f} req/s, "
            f"peak RSS {res['peak_rss_mib']:.1f} MiB, small p50/p99 "
            f"{_fmt(sm['p50_ms'])}/{_fmt(sm['p99_ms'])} ms, errors {res['errors_total']}",
            flush=True,
        )
    except PeerError as e:
        res.update(status="failed", reason=str(e))
        print(f"[{name}] FAILED: {e}", flush=True)
    except (subprocess.TimeoutExpired, OSError, ValueError, KeyError) as e:
        res.update(status="failed", reason=f"{type(e).__name__}: {e}\n{tail(log)}")
        print(f"[{name}] FAILED: {type(e).__name__}: {e}", flush=True)
    finally:
        if sampler is not None:
            sampler.stop()
        if proc is not None:
            _kill_group(proc)
    return res


def _tree_cpu_seconds(pid: int) -> float:
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


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


def _fmt(v, nd=1) -> str:
    if v is None:
        return "n/a"
    return f"{v:.{nd}f}"


def compute_ratios(results: dict[str, dict]) -> list[dict]:
    def ok(n):
        r = results.get(n)
        return r if r and r.get("status") == "ok" else None

    fr, fg = ok("fileresponse-uvicorn"), ok("fileresponse-granian")
    dj, st, ng = ok("django-uvicorn"), ok("starlette-uvicorn"), ok("nginx")
    out = []

    def ratio(label, num, den, key, target, kind=">="):
        if num is None or den is None:
            out.append({"check": label, "value": None, "target": f"{kind} {target}", "pass": None})
            return
        a, b = key(num), key(den)
        v = a / b if b else None
        passed = None if v is None else (v >= target if kind == ">=" else v <= target)
        out.append(
            {
                "check": label,
                "value": None if v is None else round(v, 2),
                "target": f"{kind} {target}",
                "pass": passed,
            }
        )

    thr = lambda r: r["large"]["mib_s"]  # noqa: E731
    p99 = lambda r: r["small"]["p99_ms"] or 0.0  # noqa: E731
    ratio("fileresponse-uvicorn / starlette-uvicorn throughput", fr, st, thr, 2.0)
    ratio("fileresponse-uvicorn / django-uvicorn throughput", fr, dj, thr, 1.0)
    ratio("fileresponse-uvicorn / starlette-uvicorn small-file p99", fr, st, p99, 2.0, "<=")
    ratio("fileresponse-granian / nginx throughput", fg, ng, thr, 0.9)
    for n, r in (("fileresponse-uvicorn", fr), ("fileresponse-granian", fg)):
        out.append(
            {
                "check": f"{n} peak RSS MiB",
                "value": None if r is None else r["peak_rss_mib"],
                "target": f"< {RSS_LIMIT_MIB:g}",
                "pass": None if r is None else r["peak_rss_mib"] < RSS_LIMIT_MIB,
            }
        )
    return out


def markdown(report: dict) -> str:
    m = report["meta"]
    lines = [
        "# serve_files benchmark",
        "",
        f"- date: {m['date']}  host: {m['host']} ({m['cpus']} CPUs)  python {m['python']}",
        f"- load: large file {m['large_size_mib']} MiB x {m['connections']} wrk connections "
        f"({m['threads']} threads), {m['duration_s']:g} s per peer "
        f"after {m['warmup_s']:g} s warm-up; "
        f"small file {m['small_size_kib']} KiB, {m['small_connections']} connections paced at "
        f"{m['small_rate']:g} req/s in total, during the same window",
        f"- load average before: {m['loadavg_before']}  after: {m['loadavg_after']}"
        + ("  **(machine was busy: figures are indicative)**" if m["busy"] else ""),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v),
        "",
        "| peer | MiB/s | req/s | large p50 ms | peak RSS MiB | idle RSS MiB "
        "| small p50 ms | small p99 ms | small req/s | server CPU % | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["peers"]:
        if r["status"] != "ok":
            reason = r.get("reason", "").splitlines()[0] if r.get("reason") else ""
            lines.append(f"| {r['peer']} | {r['status']}: {reason} | | | | | | | | | |")
            continue
        lg, sm = r["large"], r["small"]
        errs = r["errors_total"]
        detail = {k: v for k, v in lg["errors"].items() if v}
        detail.update({f"small_{k}": v for k, v in sm["errors"].items() if v})
        etxt = str(errs) + (
            f" ({', '.join(f'{k}={v}' for k, v in detail.items())})" if detail else ""
        )
        lines.append(
            f"| {r['peer']} | {lg['mib_s']:.1f} | {lg['req_s']:.2f} "
            f"| {_fmt(lg['latency_ms']['p50'])} "
            f"| {r['peak_rss_mib']:.1f} | {r['idle_rss_mib']:.1f} | {_fmt(sm['p50_ms'], 2)} "
            f"| {_fmt(sm['p99_ms'], 2)} | {_fmt(sm['rate_achieved'])} "
            f"| {_fmt(r.get('server_cpu_pct'), 0)} "
            f"| {etxt} |"
        )
    lines += ["", "| check | value | target | result |", "|---|---:|---|---|"]
    for c in report["checks"]:
        res = {True: "pass", False: "**FAIL**", None: "n/a"}[c["pass"]]
        lines.append(f"| {c['check']} | {_fmt(c['value'], 2)} | {c['target']} | {res} |")
    lines.append("")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed"
    ok = [r for r in report["peers"] if r["status"] == "ok"]
    if not ok:
        return "no peer produced results"
    names = [r["peer"] for r in ok]
    colors = ["#2a7ab9" if n.startswith("fileresponse") else "#999999" for n in names]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    thr = [r["large"]["mib_s"] for r in ok]
    rss = [r["peak_rss_mib"] for r in ok]
    b1 = ax1.bar(names, thr, color=colors)
    ax1.set_title(
        f"Throughput, {report['meta']['large_size_mib']} MiB file, "
        f"{report['meta']['connections']} connections"
    )
    ax1.set_ylabel("MiB/s (higher is better)")
    ax1.bar_label(b1, fmt="%.0f", fontsize=8)
    b2 = ax2.bar(names, rss, color=colors)
    ax2.axhline(RSS_LIMIT_MIB, color="#c0392b", linestyle="--", linewidth=1)
    ax2.text(
        len(names) - 0.5,
        RSS_LIMIT_MIB,
        f"{RSS_LIMIT_MIB:g} MiB",
        color="#c0392b",
        ha="right",
        va="bottom",
        fontsize=8,
    )
    ax2.set_title("Peak RSS of the server process tree")
    ax2.set_ylabel("MiB (lower is better)")
    if max(rss) / max(min(rss), 1.0) > 30:
        ax2.set_yscale("log")
        ax2.set_ylabel("MiB, log scale (lower is better)")
    ax2.bar_label(b2, fmt="%.0f", fontsize=8)
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
        for lbl in ax.get_xticklabels():
            lbl.set_horizontalalignment("right")
    busy = " (busy machine)" if report["meta"]["busy"] else ""
    fig.suptitle(
        f"serve_files, {report['meta']['duration_s']:g} s per peer, "
        f"{report['meta']['cpus']} CPUs{busy}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
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


def install_tools() -> None:
    if os.geteuid() != 0:
        raise SystemExit("--install needs root (it runs apt-get install -y wrk nginx)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "wrk", "nginx"], check=True, env=env)


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
        "--duration", type=float, default=15.0, help="measured seconds per peer (default 15)"
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="warm-up seconds per peer (default 3; 1 with --quick)",
    )
    p.add_argument(
        "--connections",
        type=int,
        default=50,
        help="wrk connections for the large file (default 50)",
    )
    p.add_argument(
        "--threads", type=int, default=min(2, os.cpu_count() or 2), help="wrk threads (default 2)"
    )
    p.add_argument(
        "--small-connections", type=int, default=5, help="small-file client connections (default 5)"
    )
    p.add_argument(
        "--small-rate",
        type=float,
        default=100.0,
        help="small-file requests/s in total (default 100)",
    )
    p.add_argument("--peers", help="comma list of peer numbers or names (default all)")
    p.add_argument("--quick", action="store_true", help="3 s per peer, 1 s warm-up: a smoke run")
    p.add_argument(
        "--out",
        type=Path,
        default=HERE / "results",
        help="output directory (default bench/results)",
    )
    p.add_argument(
        "--install", action="store_true", help="apt-get install -y wrk nginx first (root only)"
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a target check fails")
    a = p.parse_args(argv)
    if a.quick:
        a.duration = 3.0
    if a.warmup is None:
        a.warmup = 1.0 if a.quick else 3.0
    peers = parse_peers(a.peers)

    if a.install:
        install_tools()
    if not shutil.which("wrk"):
        raise SystemExit(
            "error: wrk is not on PATH. Install it (Debian/Ubuntu: apt-get install -y wrk), "
            "or run this script as root with --install."
        )
    try:
        import psutil  # noqa: F401
    except ImportError:
        raise SystemExit("error: psutil is not installed (pip install psutil)") from None
    if any(n != "nginx" for n in peers) and not have_module("uvicorn"):
        raise SystemExit("error: uvicorn is not installed (pip install 'uvicorn[standard]')")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_signal)
    with contextlib.suppress(AttributeError, ValueError):
        signal.signal(signal.SIGHUP, _on_signal)

    uvfast = []
    if have_module("httptools"):
        uvfast += ["--http", "httptools"]
    if have_module("uvloop"):
        uvfast += ["--loop", "uvloop"]

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
        rnd = random.Random(20240601)
        large = rnd.randbytes(LARGE_SIZE)
        small = rnd.randbytes(SMALL_SIZE)
        (docroot / LARGE_NAME).write_bytes(large)
        (docroot / SMALL_NAME).write_bytes(small)
        os.chmod(tmp, 0o755)
        (tmp / "report.lua").write_text(WRK_LUA)
        ctx = Ctx(
            tmp=tmp,
            docroot=docroot,
            large_sha=hashlib.sha256(large).hexdigest(),
            small_sha=hashlib.sha256(small).hexdigest(),
            args=a,
            uvicorn_fast=uvfast,
        )
        del large, small
        for i, name in enumerate(peers):
            if i:
                time.sleep(1.0)
            results[name] = run_peer(name, ctx)
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
    report = {
        "meta": {
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "duration_s": a.duration,
            "warmup_s": a.warmup,
            "connections": a.connections,
            "threads": max(1, min(a.threads, a.connections)),
            "small_connections": a.small_connections,
            "small_rate": a.small_rate,
            "large_size_mib": LARGE_SIZE // MiB,
            "small_size_kib": SMALL_SIZE // 1024,
            "uvicorn_flags": uvfast,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
            "busy": busy,
            "versions": {
                "fileresponse": fr_version,
                "django": dist_version("django"),
                "uvicorn": dist_version("uvicorn"),
                "granian": dist_version("granian"),
                "starlette": dist_version("starlette"),
                "uvloop": dist_version("uvloop"),
                "httptools": dist_version("httptools"),
                "nginx": _short(tool_version(["nginx", "-v"]), "nginx/"),
                "wrk": _short(tool_version(["wrk", "-v"]), "wrk "),
            },
        },
        "peers": [results[n] for n in peers],
    }
    report["checks"] = compute_ratios(results)

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
