#!/usr/bin/env python3
"""Reading files on an event loop: fileresponse's read path, aiofiles, run_in_executor, anyio.

What a server does when it cannot hand a descriptor to the kernel (stock uvicorn, TLS): read
the file in chunks without blocking its event loop. Four ways, each in this one process, on
one event loop (uvloop when installed, ``--loop asyncio`` for asyncio's own):

  fileresponse   the library's own read path, the code AsyncFileResponse runs:
                 FilesystemSource(path).astat() (the open on the loop when the names are in the
                 kernel's caches), then aiter_range(0, size, chunk): preadv(RWF_NOWAIT) on the
                 loop for bytes in the page cache, the I/O threads of fileresponse.threads
                 (IO_THREADS) for the rest
  aiofiles       aiofiles.open(path, "rb") and ``await f.read(chunk)`` until EOF: every call in
                 the loop's default executor
  executor       loop.run_in_executor(None, os.pread, fd, chunk, offset) per chunk (the open
                 and close in the executor too)
  anyio          anyio.open_file(path, "rb") and ``await f.read(chunk)``: anyio.to_thread, what
                 Starlette's FileResponse does

Cases: chunks of 64 KiB (fileresponse's CHUNK_SIZE, Starlette's chunk size) and 256 KiB;
1 and 50 concurrent readers; over one hot 10 MiB file and over 100 distinct 10 MiB files (in
the page cache: written, read, then checked with mincore); every reader reads whole files
again and again for --duration seconds. The cold case reads --cold-files files dropped from the
page cache before each run (posix_fadvise(POSIX_FADV_DONTNEED), which needs no root on a file
one owns) once each, 64 KiB chunks, 1 and 16 readers: there fileresponse's reads go to its
threads, and the table says which share of its chunks came from the loop.

The bytes read are counted and dropped: this is the read alone, with no socket; a server adds
its send. CPU is the process's (user + system of every thread, getrusage), per 10^9 bytes
read; "loop" is the event loop thread's own CPU (time.thread_time), "threads" the rest. CPU
seconds per GB hardly depend on what else runs on the machine; throughput does (the load
average is recorded). With --rounds R (3; 1 with --quick) every case runs R times, the methods
in a rotated order, and each figure is the median of its rounds.

Results: a markdown table on stdout, and in --out (default bench/results/): read_paths.json,
read_paths.md, read_paths.png (with matplotlib).

Usage:
  python bench/read_paths.py            # 1.5 s per case and method, 3 rounds: about 4 minutes
  python bench/read_paths.py --quick    # 0.4 s, 1 round, 20 distinct files
  python bench/read_paths.py --render   # the .md and .png again from the .json
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import datetime as _dt
import importlib.metadata
import itertools
import json
import mmap
import os
import platform
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

MiB = 1024 * 1024
KiB = 1024
FILE_SIZE = 10 * MiB
METHODS = ("fileresponse", "aiofiles", "executor", "anyio")
BASELINE = "aiofiles"
LABELS = {
    "fileresponse": "fileresponse (`preadv(RWF_NOWAIT)`, I/O threads)",
    "aiofiles": "aiofiles",
    "executor": "`run_in_executor(os.pread)`",
    "anyio": "anyio `open_file` (Starlette)",
}

Reader = Callable[[str, int], Awaitable[int]]
#: The threads each method may use (anyio's limiter is read on the loop).
THREADS: dict[str, int] = {}


# --------------------------------------------------------------------------------------
# the four read paths: each reads one whole file, returns the bytes read
# --------------------------------------------------------------------------------------


def _setup_django() -> None:
    from django.conf import settings

    if not settings.configured:
        settings.configure(FILERESPONSE={}, USE_TZ=True)


class _Tally:
    """How many chunks fileresponse read on the loop, and how many went to its threads."""

    loop = 0
    threads = 0


def _counting_source() -> type:
    """FilesystemSource, counting where its chunks were read (one call and an add per chunk)."""
    from fileresponse.sources.filesystem import FilesystemSource

    class CountingSource(FilesystemSource):
        def _read_cached(self, fd: int, scratch: bytearray, size: int, offset: int) -> bytes:
            data = super()._read_cached(fd, scratch, size, offset)
            if data:
                _Tally.loop += 1
            else:
                _Tally.threads += 1
            return data

    return CountingSource


def make_readers() -> dict[str, Reader]:
    import aiofiles
    import anyio

    source_class = _counting_source()

    async def fileresponse_read(path: str, chunk: int) -> int:
        source = source_class(path)
        try:
            size = (await source.astat()).size
            total = 0
            async for data in source.aiter_range(0, size, chunk):
                total += len(data)
            return total
        finally:
            source.close()

    async def aiofiles_read(path: str, chunk: int) -> int:
        total = 0
        async with aiofiles.open(path, "rb") as file:
            while data := await file.read(chunk):
                total += len(data)
        return total

    async def executor_read(path: str, chunk: int) -> int:
        loop = asyncio.get_running_loop()
        fd = await loop.run_in_executor(None, os.open, path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            total = 0
            while data := await loop.run_in_executor(None, os.pread, fd, chunk, total):
                total += len(data)
            return total
        finally:
            await loop.run_in_executor(None, os.close, fd)

    async def anyio_read(path: str, chunk: int) -> int:
        total = 0
        async with await anyio.open_file(path, "rb") as file:
            while data := await file.read(chunk):
                total += len(data)
        return total

    return {
        "fileresponse": fileresponse_read,
        "aiofiles": aiofiles_read,
        "executor": executor_read,
        "anyio": anyio_read,
    }


# --------------------------------------------------------------------------------------
# one run: N readers, whole files, for a duration (or each file once)
# --------------------------------------------------------------------------------------


async def _run(
    read: Reader, files: list[str], readers: int, chunk: int, duration: float | None
) -> dict:
    cursor = itertools.count()
    done = {"bytes": 0, "files": 0}
    _Tally.loop = _Tally.threads = 0
    deadline = None if duration is None else time.monotonic() + duration

    async def reader() -> None:
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                return
            index = next(cursor)
            if deadline is None and index >= len(files):
                return
            # Awaited first: ``done["bytes"] += await ...`` would read the total before the
            # await and lose what other readers added meanwhile.
            got = await read(files[index % len(files)], chunk)
            done["bytes"] += got
            done["files"] += 1

    usage = resource.getrusage(resource.RUSAGE_SELF)
    loop_cpu = time.thread_time()
    started = time.perf_counter()
    await asyncio.gather(*(reader() for _ in range(readers)))
    wall = time.perf_counter() - started
    loop_cpu = time.thread_time() - loop_cpu
    after = resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - usage.ru_utime, after.ru_stime - usage.ru_stime
    cpu = user + system
    gigabytes = done["bytes"] / 1e9
    chunks = _Tally.loop + _Tally.threads
    return {
        "bytes": done["bytes"],
        "files": done["files"],
        "wall_s": round(wall, 4),
        "cpu_s": round(cpu, 4),
        "user_s": round(user, 4),
        "system_s": round(system, 4),
        "loop_cpu_s": round(loop_cpu, 4),
        "thread_cpu_s": round(max(cpu - loop_cpu, 0.0), 4),
        "cpu_s_per_gb": round(cpu / gigabytes, 4) if gigabytes else None,
        "loop_cpu_s_per_gb": round(loop_cpu / gigabytes, 4) if gigabytes else None,
        "thread_cpu_s_per_gb": round(max(cpu - loop_cpu, 0.0) / gigabytes, 4)
        if gigabytes
        else None,
        "mib_s": round(done["bytes"] / MiB / wall, 1) if wall else None,
        "cpu_pct": round(100 * cpu / wall) if wall else None,
        "loop_share": round(_Tally.loop / chunks, 4) if chunks else None,
    }


# --------------------------------------------------------------------------------------
# files and the page cache
# --------------------------------------------------------------------------------------


def write_files(directory: Path, count: int) -> list[str]:
    block = random.Random(20240601).randbytes(FILE_SIZE)
    paths = []
    for index in range(count):
        path = directory / f"file-{index:03d}.bin"
        with path.open("wb") as file:
            file.write(block)
            file.flush()
            os.fsync(file.fileno())
        paths.append(str(path))
    return paths


def cached_fraction(path: str) -> float:
    """The share of the file's pages in the page cache, by ``mincore(2)`` on a mapping.

    Nothing is read: a probe with ``preadv(RWF_NOWAIT)`` would start the kernel's readahead.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int]
    libc.mmap.argtypes += [ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    page = os.sysconf("SC_PAGE_SIZE")
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if not size:
            return 1.0
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap failed")
        try:
            pages = (size + page - 1) // page
            vector = ctypes.create_string_buffer(pages)
            if libc.mincore(address, size, vector) != 0:
                raise OSError(ctypes.get_errno(), "mincore failed")
            return sum(byte & 1 for byte in vector.raw) / pages
        finally:
            libc.munmap(address, size)
    finally:
        os.close(fd)


def warm(paths: list[str]) -> None:
    for path in paths:
        with open(path, "rb") as file:
            while file.read(4 * MiB):
                pass


def drop_from_page_cache(paths: list[str]) -> float:
    """Drop the files' pages (the caller owns them); the share still cached after."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return statistics.mean(cached_fraction(path) for path in paths)


# --------------------------------------------------------------------------------------
# the cases
# --------------------------------------------------------------------------------------


def cases(args: argparse.Namespace) -> list[dict]:
    out = []
    for files in ("hot", "distinct"):
        for readers in (1, 50):
            for chunk in (64 * KiB, 256 * KiB):
                out.append({"files": files, "readers": readers, "chunk": chunk})
    for readers in (1, 16):
        out.append({"files": "cold", "readers": readers, "chunk": 64 * KiB})
    return out


def case_name(case: dict, args: argparse.Namespace) -> str:
    what = {
        "hot": "one hot 10 MiB file",
        "distinct": f"{args.files} distinct files",
        "cold": f"{args.cold_files} cold files",
    }[case["files"]]
    return f"{what}, {case['readers']} reader{'s' if case['readers'] > 1 else ''}, " + (
        f"{case['chunk'] // KiB} KiB"
    )


def median_row(runs: list[dict]) -> dict:
    row: dict = {"rounds": runs}
    for key in runs[0]:
        values = [run[key] for run in runs if run.get(key) is not None]
        if values and all(isinstance(value, int | float) for value in values):
            row[key] = round(statistics.median(values), 4)
    return row


async def measure(args: argparse.Namespace, paths: dict[str, list[str]]) -> list[dict]:
    import anyio.to_thread

    readers = make_readers()
    THREADS["anyio_limiter"] = int(anyio.to_thread.current_default_thread_limiter().total_tokens)
    methods = [m for m in METHODS if m in args.methods]
    results = []
    runs: dict[tuple[int, str], list[dict]] = {}
    all_cases = cases(args)
    for round_index in range(args.rounds):
        shift = round_index % len(methods)
        order = methods[shift:] + methods[:shift]
        for case_index, case in enumerate(all_cases):
            for method in order:
                files = paths[case["files"]]
                if case["files"] == "cold":
                    left = drop_from_page_cache(files)
                    run = await _run(readers[method], files, case["readers"], case["chunk"], None)
                    run["cached_before"] = round(left, 3)
                else:
                    run = await _run(
                        readers[method], files, case["readers"], case["chunk"], args.duration
                    )
                runs.setdefault((case_index, method), []).append(run)
                print(
                    f"[{round_index + 1}/{args.rounds}] {case_name(case, args)}: {method:12}"
                    f" {run['mib_s']:>8,.0f} MiB/s  {run['cpu_s_per_gb']:.3f} CPU s/GB"
                    + (
                        f"  loop share {run['loop_share']:.0%}"
                        if run["loop_share"] is not None
                        else ""
                    ),
                    flush=True,
                )
    for case_index, case in enumerate(all_cases):
        row = {"case": case_name(case, args), **case, "methods": {}}
        for method in methods:
            row["methods"][method] = median_row(runs[(case_index, method)])
        base = row["methods"].get(BASELINE)
        if base:
            for figures in row["methods"].values():
                figures["cpu_vs_aiofiles"] = _ratio(figures, base, "cpu_s_per_gb")
                figures["throughput_vs_aiofiles"] = _ratio(figures, base, "mib_s")
        results.append(row)
    return results


def _ratio(num: dict, den: dict, key: str) -> float | None:
    return round(num[key] / den[key], 3) if num.get(key) and den.get(key) else None


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


def _cell(figures: dict | None, key: str, ratio_key: str, digits: int) -> str:
    if not figures or figures.get(key) is None:
        return ""
    text = f"{figures[key]:,.{digits}f}"
    ratio = figures.get(ratio_key)
    return text + (f" ({ratio:.2f}x)" if ratio is not None else "")


def markdown(report: dict) -> str:
    meta = report["meta"]
    methods = [m for m in METHODS if m in meta["methods"]]
    lines = [
        "# read_paths: reading files on an asyncio event loop",
        "",
        f"{meta['date']}, {meta['cpus']} CPUs, Python {meta['python']}, {meta['loop']} loop,"
        f" {meta['duration_s']:g} s per case and method (cold: each file once),"
        f" {meta['rounds']} round{'s' if meta['rounds'] != 1 else ''} (medians),"
        f" load average before {meta['loadavg_before']}, after {meta['loadavg_after']}"
        " (after: with this script's own threads)"
        + (" (other work shared the cores: throughput is indicative)" if meta["busy"] else "")
        + ".",
        "",
        "CPU seconds per 10^9 bytes read (user + system, every thread of the process), the"
        " ratio to aiofiles in parentheses (lower is better):",
        "",
        "| case | "
        + " | ".join(LABELS[m] for m in methods)
        + " | fileresponse: chunks on the loop |",
        "|---|" + "---:|" * len(methods) + "---:|",
    ]
    for row in report["cases"]:
        cells = [
            _cell(row["methods"].get(m), "cpu_s_per_gb", "cpu_vs_aiofiles", 3) for m in methods
        ]
        ours = row["methods"].get("fileresponse", {})
        share = ours.get("loop_share")
        lines.append(
            f"| {row['case']} | "
            + " | ".join(cells)
            + f" | {'' if share is None else f'{share:.0%}'} |"
        )
    lines += [
        "",
        "Throughput, MiB/s (ratio to aiofiles):",
        "",
        "| case | " + " | ".join(LABELS[m] for m in methods) + " |",
        "|---|" + "---:|" * len(methods),
    ]
    for row in report["cases"]:
        cells = [
            _cell(row["methods"].get(m), "mib_s", "throughput_vs_aiofiles", 0) for m in methods
        ]
        lines.append(f"| {row['case']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Where the CPU went, s/GB on the event loop's thread / in other threads:",
        "",
        "| case | " + " | ".join(LABELS[m] for m in methods) + " |",
        "|---|" + "---:|" * len(methods),
    ]
    for row in report["cases"]:
        cells = []
        for method in methods:
            figures = row["methods"].get(method, {})
            loop, threads = figures.get("loop_cpu_s_per_gb"), figures.get("thread_cpu_s_per_gb")
            cells.append("" if loop is None else f"{loop:.3f} / {threads:.3f}")
        lines.append(f"| {row['case']} | " + " | ".join(cells) + " |")
    cold = [row for row in report["cases"] if row["files"] == "cold"]
    if cold:
        left = max(
            run.get("cached_before", 0)
            for row in cold
            for figures in row["methods"].values()
            for run in figures["rounds"]
        )
        lines += [
            "",
            f"Cold: before each run the files were dropped from the page cache with"
            f" `posix_fadvise(POSIX_FADV_DONTNEED)`; at most {left:.1%} of their pages were"
            " still cached (`mincore`). fileresponse's first read of a file finds nothing"
            " cached and goes to its threads; that read, and the `RWF_NOWAIT` reads after"
            " it, start the kernel's readahead, so the next chunks are mostly in memory"
            " when asked for (on a virtual disk the host may cache too). The readahead's"
            " own work is not all counted in this process's CPU.",
        ]
    threads = meta["threads"]
    lines += [
        "",
        f"Threads: fileresponse's IO_THREADS {threads['fileresponse_io_threads']}; the loop's"
        f" default executor (aiofiles, executor) {threads['default_executor']}; anyio's"
        f" default limiter {threads['anyio_limiter']}.",
        "",
        "The bytes are read and dropped (no socket): a server adds the cost of its send.",
    ]
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
    methods = [m for m in METHODS if m in report["meta"]["methods"]]
    rows = report["cases"]
    labels = [f"{r['files']}\n{r['readers']}r {r['chunk'] // KiB}K" for r in rows]
    colours = {
        "fileresponse": "#3a7ca5",
        "aiofiles": "#d1495b",
        "executor": "#edae49",
        "anyio": "#6a994e",
    }
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
    width = 0.8 / len(methods)
    for index, method in enumerate(methods):
        xs = [k + (index - (len(methods) - 1) / 2) * width for k in range(len(rows))]
        cpu = [r["methods"].get(method, {}).get("cpu_s_per_gb") or 0 for r in rows]
        rate = [r["methods"].get(method, {}).get("mib_s") or 0 for r in rows]
        top.bar(xs, cpu, width, label=method, color=colours[method])
        bottom.bar(xs, rate, width, label=method, color=colours[method])
    top.set_ylabel("CPU s / GB (lower is better)")
    bottom.set_ylabel("MiB/s (higher is better)")
    bottom.set_xticks(range(len(rows)), labels, fontsize=8)
    top.legend(fontsize=8)
    meta = report["meta"]
    fig.suptitle(
        f"read_paths: reading files on an event loop ({meta['loop']}), {meta['cpus']} CPUs,"
        f" median of {meta['rounds']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def _event_loop(kind: str) -> tuple[Callable[[Awaitable[list[dict]]], list[dict]], str]:
    if kind in ("auto", "uvloop"):
        try:
            import uvloop

            return (lambda main: uvloop.run(main)), f"uvloop {_version('uvloop')}"
        except ImportError:
            if kind == "uvloop":
                raise SystemExit("error: uvloop is not installed") from None
    return asyncio.run, "asyncio"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=None, help="seconds per run (1.5)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (3; 1 quick)")
    parser.add_argument("--files", type=int, default=None, help="distinct files (100; 20 quick)")
    parser.add_argument("--cold-files", type=int, default=None, help="cold files (32; 8 quick)")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma list of methods")
    parser.add_argument("--quick", action="store_true", help="0.4 s per run, 1 round")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="output directory")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the files (tmp)")
    parser.add_argument(
        "--render", action="store_true", help="rewrite the .md and .png from --out's .json only"
    )
    args = parser.parse_args(argv)
    if args.render:
        report = json.loads((args.out / "read_paths.json").read_text())
        write_report(report, args.out)
        return 0
    args.duration = args.duration or (0.4 if args.quick else 1.5)
    args.rounds = max(1, args.rounds or (1 if args.quick else 3))
    args.files = args.files or (20 if args.quick else 100)
    args.cold_files = args.cold_files or (8 if args.quick else 32)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(args.methods) - set(METHODS)
    if unknown:
        raise SystemExit(f"error: unknown methods {sorted(unknown)}; known: {', '.join(METHODS)}")
    if not getattr(os, "RWF_NOWAIT", 0):
        print("note: no os.RWF_NOWAIT here: fileresponse reads every chunk in its threads")
    _setup_django()
    run, loop_name = _event_loop(args.loop)

    load_before = os.getloadavg()
    busy = load_before[0] >= 1.0
    if busy:
        print(f"warning: load average {load_before[0]:.2f} >= 1.0, throughput will be noisy")
    directory = Path(tempfile.mkdtemp(prefix="fr-bench-read-", dir=args.dir))
    try:
        print(
            f"writing {args.files} + {args.cold_files} files of 10 MiB in {directory}", flush=True
        )
        distinct = write_files(directory, args.files)
        cold_dir = directory / "cold"
        cold_dir.mkdir()
        cold = write_files(cold_dir, args.cold_files)
        paths = {"hot": distinct[:1], "distinct": distinct, "cold": cold}
        warm(distinct)
        cached = statistics.mean(cached_fraction(path) for path in distinct)
        if cached < 1.0:
            print(f"warning: only {cached:.0%} of the distinct files' pages are cached")
        results = run(measure(args, paths))
    except KeyboardInterrupt:
        return 130
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    from fileresponse.conf import get_config

    report = {
        "meta": {
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "loop": loop_name,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "distinct_files": args.files,
            "cold_files": args.cold_files,
            "file_size_mib": FILE_SIZE // MiB,
            "methods": args.methods,
            "loadavg_before": [round(value, 2) for value in load_before],
            "loadavg_after": [round(value, 2) for value in os.getloadavg()],
            "busy": busy,
            "distinct_cached_before": round(cached, 3),
            "threads": {
                "fileresponse_io_threads": get_config().IO_THREADS,
                "default_executor": min(32, (os.cpu_count() or 1) + 4),
                **THREADS,
            },
            "versions": {
                name: _version(name)
                for name in ("fileresponse", "django", "aiofiles", "anyio", "uvloop")
            },
        },
        "cases": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "read_paths.json").write_text(json.dumps(report, indent=2) + "\n")
    write_report(report, args.out)
    return 0


def write_report(report: dict, out: Path) -> None:
    text = markdown(report)
    print()
    print(text)
    (out / "read_paths.md").write_text(text)
    problem = plot(report, out / "read_paths.png")
    if problem:
        print(f"note: no chart: {problem}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
