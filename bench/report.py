#!/usr/bin/env python3
"""README.md's benchmark summary, generated from bench/results/*.json.

The text between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` in README.md is made
here from the results of the last runs, so no figure is copied by hand:

  serve_files.json      bench/serve_files.py: nginx, fileresponse's worker, uvicorn, Starlette,
                        Django, granian; a hot file (also at an equal, paced rate), distinct
                        files, small files
  read_paths.json       bench/read_paths.py: fileresponse's read path next to aiofiles,
                        run_in_executor and anyio, CPU s/GB
  serve_minio.json      bench/serve_minio.py: serving from MinIO
  derivatives.json      bench/derivatives.py: thumbnails (and a thumbnail service)
  media.json            bench/media.py: a streamed transcode, posters, PDF pages
  load-*.json           bench/load.py: slow clients, many connections

A missing file leaves its part out; a file of another shape says so in its part.

Usage:
  python bench/report.py            # rewrite README.md's summary
  python bench/report.py --check    # exit 1 if README.md is not what the results give
  python bench/report.py --print    # the summary on stdout, README.md untouched
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
README = REPO / "README.md"
START = "<!-- bench:start -->"
END = "<!-- bench:end -->"

Json = dict[str, Any]


def load(name: str, results: Path) -> Json | None:
    path = results / name
    if not path.exists():
        return None
    return json.loads(path.read_text())


def fmt(value: float | None, digits: int = 0, empty: str = "n/a") -> str:
    if value is None:
        return empty
    return f"{value:,.{digits}f}"


def link(name: str) -> str:
    return f"[`{name}`](bench/results/{name})"


def busy_note(busy: bool, loadavg: list[float] | None = None) -> str:
    if not busy:
        return ""
    text = "other work shared the cores"
    if loadavg:
        text += f", load average {loadavg[0]:.1f}"
    return f" ({text}: indicative figures)"


def files_note(m: Json) -> str:
    """serve_files measures what else ran: name the disturbed peers, or say there were none."""
    if "disturbed_peers" not in m:
        return busy_note(m.get("busy", False), m.get("loadavg_before"))
    if not m["disturbed_peers"]:
        return ", no other program using the CPU while measuring"
    return (
        "; other programs or the hypervisor took more than 15% of a core while measuring "
        + ", ".join(m["disturbed_peers"])
        + " (indicative figures there)"
    )


def result_of(check: Json) -> str:
    return {True: "pass", False: "**FAIL**", None: "n/a"}[check.get("pass")]


# -- serve_files -----------------------------------------------------------------------

#: Peers of the summary table, in order, and how the README names them.
FILE_PEERS = {
    "nginx": "nginx, `sendfile on`",
    "fileresponse-worker": "fileresponse, its worker (`-k fileresponse.workers.UvicornWorker`)",
    "fileresponse-uvicorn": "fileresponse, stock uvicorn",
    "fileresponse-granian": "fileresponse, granian",
    "starlette-uvicorn": "Starlette `FileResponse`, stock uvicorn",
    "starlette-worker": "Starlette `FileResponse`, fileresponse's worker",
    "django-static-serve": "Django `static.serve`, uvicorn",
    "django-fileresponse": "Django `FileResponse(open(...))`, uvicorn",
}

#: The small-file rows: (label, peer under the worker, peer under stock uvicorn).
SMALL_ROWS = (
    ("fileresponse, `views.serve` through Django", "fileresponse-worker", "fileresponse-uvicorn"),
    (
        "Django floor: async view, 4 KiB `HttpResponse`",
        "django-floor-worker",
        "django-floor-uvicorn",
    ),
    (
        "fileresponse + the example's 2 middlewares",
        "fileresponse-worker-mw",
        "fileresponse-uvicorn-mw",
    ),
    ("Django floor + the same 2 middlewares", "django-floor-worker-mw", "django-floor-uvicorn-mw"),
    ("fileresponse fast path (`FAST_PATHS`)", "fastpath-worker", "fastpath-uvicorn"),
    ("Starlette `FileResponse`", "starlette-worker", "starlette-uvicorn"),
    ("nginx", None, "nginx"),
)


#: The peers of the sentence on (a'), paced downloads (absent from older results).
PACED_PEERS = {
    "nginx": "nginx",
    "fileresponse-worker": "fileresponse's worker",
    "starlette-uvicorn": "Starlette under uvicorn",
}


def serve_files_part(d: Json) -> list[str]:
    m = d["meta"]
    peers = {p["peer"]: p for p in d["peers"]}

    def scen(name: str, scenario: str) -> Json | None:
        p = peers.get(name)
        if not p or p.get("status") != "ok":
            return None
        return p.get("scenarios", {}).get(scenario)

    lines = [
        "### Serving files",
        "",
        f"{link('serve_files.md')}, {m['date'][:10]}: {m['duration_s']:g} s per scenario and"
        f" peer{files_note(m)}. (a) {m['connections']}"
        f" clients download one {m['large_size_mib']} MiB file while another fetches a"
        f" {m['small_size_kib']} KiB file {m['small_rate']:g} times a second; (b) the same"
        f" clients on {m['cold_files']} distinct {m['large_size_mib']} MiB files (in the page"
        f" cache); (c) {m['small_load_connections']} clients on the {m['small_size_kib']} KiB"
        " file alone. CPU s/GB: the server's CPU time per 10^9 bytes sent.",
        "",
        "| peer | (a) MiB/s | (a) CPU s/GB | (a) small p99 ms | (b) MiB/s | (b) CPU s/GB"
        " | (c) req/s | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, label in FILE_PEERS.items():
        p = peers.get(name)
        if p is None:
            continue
        if p.get("status") != "ok":
            reason = (p.get("reason") or "").splitlines()[0]
            lines.append(f"| {label} | {p['status']}: {reason} | | | | | | |")
            continue
        hot, cold, small = (scen(name, s) for s in ("hot", "cold", "small"))
        peak = max((s["peak_rss_mib"] for s in (hot, cold) if s), default=None)
        lines.append(
            f"| {label} | {fmt(hot and hot['mib_s'])} | {fmt(hot and hot['cpu_s_per_gb'], 2)}"
            f" | {fmt(hot and hot['small']['p99_ms'], 1)} | {fmt(cold and cold['mib_s'])}"
            f" | {fmt(cold and cold['cpu_s_per_gb'], 2)} | {fmt(small and small['req_s'])}"
            f" | {fmt(peak)} |"
        )
    paced = [(label, scen(name, "paced")) for name, label in PACED_PEERS.items()]
    paced_figures = [(label, s) for label, s in paced if s is not None]
    if paced_figures and m.get("paced_rate_mib"):
        rate = m["paced_rate_mib"]
        lines += [
            "",
            f"(a') The same {m['connections']} downloads paced at {rate:g} MiB/s each"
            f" ({m['connections'] * rate:g} MiB/s in all: the same load for every peer, where"
            f" (a) lets each push what it can), the {m['small_size_kib']} KiB file's p50 / p99"
            " and the server's CPU: "
            + "; ".join(
                f"{label} {fmt(s['small']['p50_ms'], 2)} / {fmt(s['small']['p99_ms'], 1)} ms,"
                f" {fmt(s['cpu_s_per_gb'], 2)} s/GB at {fmt(s['mib_s'])} MiB/s"
                for label, s in paced_figures
            )
            + ".",
        ]
    if "small" in m.get("scenarios", []):
        lines += [
            "",
            f"Small files (c), requests/s ({m['small_load_connections']} connections, p99 in"
            " parentheses):",
            "",
            "| path | fileresponse's worker | stock uvicorn |",
            "|---|---:|---:|",
        ]
        for label, worker, uvicorn in SMALL_ROWS:
            cells = []
            for name in (worker, uvicorn):
                s = scen(name, "small") if name else None
                p = peers.get(name) if name else None
                if s is not None:
                    cells.append(f"{s['req_s']:,.0f} ({s['latency_ms']['p99']:.1f} ms)")
                elif p is not None and p.get("status") == "skipped":
                    cells.append(f"skipped: {p.get('reason', '')}")
                else:
                    cells.append("")
            if any(cells):
                lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    checks = d.get("checks", [])
    if checks:
        passed = [c for c in checks if c.get("pass") is True]
        lines += [
            "",
            f"Targets ({len(passed)} of {len(checks)} met):",
            "",
            "| check | value | target | result |",
            "|---|---:|---|---|",
            *(
                f"| {c['check']} | {fmt(c.get('value'), 2)} | {c['target']} | {result_of(c)} |"
                for c in checks
                if c.get("pass") is not None and c.get("figure") != "peak RSS MiB"
            ),
        ]
        rss = [c for c in checks if c.get("figure") == "peak RSS MiB" and c.get("pass") is not None]
        if rss:
            lines += [
                "",
                "Peak RSS "
                + rss[0]["target"]
                + " MiB: "
                + ", ".join(
                    f"{c['check'].split(' peak')[0]} {fmt(c.get('value'))}"
                    + ("" if c["pass"] else " (**FAIL**)")
                    for c in rss
                )
                + ".",
            ]
    return lines


# -- read_paths ------------------------------------------------------------------------

#: The read paths of bench/read_paths.py, in order, and how the README names them.
READ_METHODS = {
    "fileresponse": "fileresponse",
    "aiofiles": "aiofiles",
    "executor": "`run_in_executor(os.pread)`",
    "anyio": "anyio `open_file` (Starlette)",
}


def read_paths_part(d: Json) -> list[str]:
    m = d["meta"]
    methods = [name for name in READ_METHODS if name in m["methods"]]
    busy = busy_note(m.get("busy", False), m.get("loadavg_before"))
    lines = [
        "### Reading files on the event loop",
        "",
        f"{link('read_paths.md')}, {m['date'][:10]}: what a server that cannot use `sendfile`"
        " (stock uvicorn, TLS) does with every chunk, measured alone: files read in one process"
        f" on a {m['loop'].split()[0]} loop and dropped, {m['duration_s']:g} s per case and"
        f" method, median of {m['rounds']} rounds{busy}. CPU seconds (user + system, every"
        " thread) per 10^9 bytes read, the ratio to aiofiles in parentheses; the last column is"
        " fileresponse's throughput and its ratio to aiofiles'.",
        "",
        "| case | "
        + " | ".join(READ_METHODS[name] for name in methods)
        + " | fileresponse MiB/s |",
        "|---|" + "---:|" * (len(methods) + 1),
    ]
    for row in d["cases"]:
        figures = row["methods"]
        cells = []
        for name in methods:
            f = figures.get(name, {})
            ratio = f.get("cpu_vs_aiofiles")
            text = fmt(f.get("cpu_s_per_gb"), 2, "")
            cells.append(
                text + (f" ({ratio:.2f}x)" if ratio is not None and name != "aiofiles" else "")
            )
        ours = figures.get("fileresponse", {})
        rate = fmt(ours.get("mib_s"), 0, "")
        if ours.get("throughput_vs_aiofiles") is not None:
            rate += f" ({ours['throughput_vs_aiofiles']:.2f}x)"
        lines.append(f"| {row['case']} | " + " | ".join(cells) + f" | {rate} |")
    cold = [row for row in d["cases"] if row["files"] == "cold"]
    shares = [
        row["methods"]["fileresponse"]["loop_share"]
        for row in cold
        if row["methods"].get("fileresponse", {}).get("loop_share") is not None
    ]
    if shares:
        low, high = 1 - max(shares), 1 - min(shares)
        span = f"{low:.0%}" if f"{low:.0%}" == f"{high:.0%}" else f"{low:.0%} to {high:.0%}"
        lines += [
            "",
            "Cold files were dropped from the page cache (`posix_fadvise(POSIX_FADV_DONTNEED)`)"
            f" before each run: {span} of fileresponse's chunks (the first of each file among"
            " them) went to its I/O threads, the rest were read on the loop, brought in by the"
            " kernel's readahead meanwhile.",
        ]
    return lines


# -- serve_minio -----------------------------------------------------------------------


def serve_minio_part(d: Json) -> list[str]:
    m = d["meta"]
    lines = [
        "### From MinIO",
        "",
        f"{link('serve_minio.md')}, {m['date'][:10]}: {m['connections']} clients download one"
        f" {m.get('object_size_mib', 10)} MiB object through each peer, {m['duration_s']:g} s"
        f"{busy_note(m.get('busy', False), m.get('loadavg_before'))}.",
        "",
        "| peer | MiB/s | peak RSS MiB | CPU ms/MiB |",
        "|---|---:|---:|---:|",
    ]
    for p in d["peers"]:
        if p.get("status") != "ok":
            reason = (p.get("reason") or "").splitlines()[0] if p.get("reason") else ""
            lines.append(f"| {p['peer']} | {p.get('status')}: {reason} | | |")
            continue
        lines.append(
            f"| {p['peer']} | {fmt(p.get('mib_s'))} | {fmt(p.get('peak_rss_mib'))}"
            f" | {fmt(p.get('cpu_ms_per_mib'), 2)} |"
        )
    lines += _checks_sentence(d.get("checks", []))
    return lines


def _checks_sentence(checks: list[Json]) -> list[str]:
    if not checks:
        return []
    parts = [
        f"{c['check']} {fmt(c.get('value'), 2)} ({c['target']}: {result_of(c)})" for c in checks
    ]
    return ["", "Targets: " + "; ".join(parts) + "."]


# -- derivatives -----------------------------------------------------------------------


def derivatives_part(d: Json) -> list[str]:
    r = d.get("ratios", {})
    met = r.get("targets_met", {})
    lines = ["### Derivatives", ""]
    text = f"{link('derivatives.md')}, {str(d.get('date', ''))[:10]}: "
    page = d.get("page_render", {})
    ours = page.get("fileresponse")
    others = {k: v for k, v in page.items() if k != "fileresponse"}
    sentences = []
    if ours and others:
        peers = ", ".join(f"{k} {v['median_s'] * 1000:,.0f} ms" for k, v in others.items())
        sentences.append(
            f"a page of uncached thumbnails renders in {ours['median_s'] * 1000:.1f} ms"
            f" ({peers}: {fmt(r.get('page_speedup_min'))}x and more)"
        )
    single = d.get("single_thumbnail", {})
    if single:
        peers_s = {k: v for k, v in single.items() if not k.startswith("fileresponse")}
        default = single.get("fileresponse (process pool, default)")
        vips = single.get("fileresponse (vips)")
        if default and peers_s:
            peers = ", ".join(f"{k} {v['median_s'] * 1000:.0f} ms" for k, v in peers_s.items())
            with_vips = f", {vips['median_s'] * 1000:.1f} ms with libvips" if vips else ""
            sentences.append(
                "one 300x200 thumbnail of a 4000x3000 JPEG takes"
                f" {default['median_s'] * 1000:.1f} ms with Pillow{with_vips} ({peers})"
            )
    hits = d.get("cache_hits", {})
    if "requests_per_s" in hits and "hit_vs_plain" in r:
        rates = hits["requests_per_s"]
        sentences.append(
            f"a cache hit is served at {rates.get('derivative hit', 0):,.0f} requests/s,"
            f" {r['hit_vs_plain']:.2f}x the rate of the same file served plainly"
        )
    lines.append(text + "; ".join(sentences) + "." if sentences else text + "no figures.")
    services = d.get("services")
    if services and "peers" in services:
        sp = services["peers"]
        ours_d, thumbor = sp.get("fileresponse", {}), sp.get("thumbor", {})
        if "cold" in ours_d and "cold" in thumbor:
            lines += [
                "",
                f"As a thumbnail service next to thumbor ({services.get('processes', '?')}"
                " processes each):",
                "",
                "| peer | cold misses/s | miss p99 ms | CPU ms per miss | hits/s |",
                "|---|---:|---:|---:|---:|",
            ]
            for name, data in (("fileresponse", ours_d), ("thumbor", thumbor)):
                cold, hit = data["cold"], data["hits"]
                lines.append(
                    f"| {name} | {cold['misses_per_s']:.1f} | {cold['p99_ms']:.0f}"
                    f" | {cold['cpu_ms_per_miss']:.1f} | {hit['requests_per_s']:,.0f} |"
                )
        elif "skipped" in thumbor:
            lines += ["", f"thumbor: skipped ({thumbor['skipped']})."]
    if met:
        lines += [
            "",
            "Targets: "
            + ", ".join(f"{k} {'met' if v else '**not met**'}" for k, v in met.items())
            + ".",
        ]
    return lines


# -- media -----------------------------------------------------------------------------


def media_part(d: Json) -> list[str]:
    t = d.get("transcode", {})
    peers = t.get("peers", {})
    machine = d.get("machine", {})
    load_avg = [machine.get("load_average", 0), machine.get("load_average_end", 0)]
    busy = max(load_avg) >= 1.0
    ours, temp, bare = peers.get("fileresponse"), peers.get("tempfile view"), peers.get("ffmpeg")
    lines = ["### Media", ""]
    head = f"{link('media.md')}, {str(d.get('date', ''))[:10]}"
    if busy:
        head += f" (load average {load_avg[0]:.1f} to {load_avg[1]:.1f}: indicative figures)"
    src = d.get("source", {})
    sentences = []
    if ours and temp and bare:
        sentences.append(
            f"`{t.get('spec', '?')}` of a {src.get('seconds', '?')} s {src.get('size', '?')}"
            f" video: first byte after {ours['ttfb_s'] * 1000:,.0f} ms"
            f" ({d['ratios']['ttfb_vs_tempfile']:.3f}x the ffmpeg-to-a-temporary-file view's"
            f" {temp['ttfb_s'] * 1000:,.0f} ms), all of it in {ours['total_s'] * 1000:,.0f} ms"
            f" ({d['ratios']['total_vs_ffmpeg']:.2f}x bare ffmpeg's {bare['total_s'] * 1000:,.0f}"
            " ms)"
        )
    for name, data in d.get("latency", {}).items():
        sentences.append(
            f"{name} `{data['spec']}` {data['cold_s'] * 1000:,.0f} ms cold,"
            f" {data['hit_s'] * 1000:,.0f} ms cached"
        )
    lines.append(head + ": " + "; ".join(sentences) + ".")
    met = d.get("ratios", {}).get("targets_met", {})
    if met:
        lines += [
            "",
            "Targets: "
            + ", ".join(f"{k} {'met' if v else '**not met**'}" for k, v in met.items())
            + ".",
        ]
    return lines


# -- load ------------------------------------------------------------------------------


def load_part(runs: dict[str, Json]) -> list[str]:
    lines = ["### Under load", ""]
    for name, d in runs.items():
        m = d.get("meta", {})
        params = m.get("parameters", {})
        date = str(m.get("date", ""))[:10]
        busy = busy_note((m.get("loadavg_before") or [0])[0] >= 1.0, m.get("loadavg_before"))
        if name == "slow-clients":
            lines += [
                f"{link('load-slow-clients.md')}, {date}: {params.get('clients', '?')} clients"
                f" reading a {params.get('file', '10 MiB file')} at {params.get('read', '?')}"
                f" for {params.get('duration_s', '?'):g} s{busy}; meanwhile a small file's"
                " latency:",
                "",
                "| server | clients open at end | peak RSS MiB | small p50 / p99 ms |",
                "|---|---:|---:|---:|",
            ]
            for r in d.get("results", []):
                slow, small = r.get("slow", {}), r.get("small", {})
                lines.append(
                    f"| {r['server']} | {slow.get('open_at_end', '?')}/{r.get('clients', '?')}"
                    f" | {fmt(r.get('rss_mib', {}).get('peak'))}"
                    f" | {fmt(small.get('p50_ms'), 1)} / {fmt(small.get('p99_ms'), 1)} |"
                )
        elif name == "connections":
            lines += [
                f"{link('load-connections.md')}, {date}: {params.get('connections', '?')}"
                f" keep-alive connections for {params.get('duration_s', '?'):g} s{busy}, files,"
                " ranges, multipart ranges, revalidations and derivative hits, every response"
                " checked:",
                "",
                "| server | req/s | errors | p50 / p99 ms | peak RSS MiB | fds peak / after |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for r in d.get("results", []):
                lat, fds = r.get("latency", {}), r.get("fds", {})
                lines.append(
                    f"| {r['server']} | {fmt(r.get('req_s'))} | {r.get('errors_total', '?')}"
                    f" | {fmt(lat.get('p50_ms'))} / {fmt(lat.get('p99_ms'))}"
                    f" | {fmt(r.get('rss_mib', {}).get('peak'))}"
                    f" | {fds.get('peak', '?')} / {fds.get('after', '?')} |"
                )
        else:
            continue
        lines.append("")
    while lines and lines[-1] == "":
        lines.pop()
    return lines


# -- the section -----------------------------------------------------------------------


def _part(title: str, make: Callable[[Any], list[str]], data: Any) -> list[str]:
    try:
        return make(data)
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as error:
        return [f"### {title}", "", f"(results of an unexpected shape: {type(error).__name__})"]


def section(results: Path = RESULTS) -> str:
    parts: list[list[str]] = [
        [
            "<!-- generated by `python bench/report.py` from bench/results/*.json:"
            " edit that script, not this text -->",
            "",
            "Measured with the scripts in [`bench/`](bench/) on a 2-core machine, each peer with"
            " one worker, one after another in the same run (`make bench` runs them again)."
            " Full tables, method and plots: [`bench/results/`](bench/results/), how to read"
            " them: [`bench/README.md`](bench/README.md).",
        ]
    ]
    for name, title, make in (
        ("serve_files.json", "Serving files", serve_files_part),
        ("read_paths.json", "Reading files on the event loop", read_paths_part),
        ("serve_minio.json", "From MinIO", serve_minio_part),
        ("derivatives.json", "Derivatives", derivatives_part),
        ("media.json", "Media", media_part),
    ):
        data = load(name, results)
        if data is not None:
            parts.append(_part(title, make, data))
    runs = {
        path.stem.removeprefix("load-"): json.loads(path.read_text())
        for path in sorted(results.glob("load-*.json"))
    }
    if runs:
        parts.append(_part("Under load", load_part, runs))
    body = "\n\n".join("\n".join(p) for p in parts)
    return f"{START}\n{body}\n{END}"


def replace_section(readme: str, new: str) -> str:
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"README.md has no {START} ... {END} markers")
    return readme[:start] + new + readme[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    parser.add_argument("--print", action="store_true", help="print the section only")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    new = section(args.results)
    if args.print:
        print(new)
        return 0
    readme = args.readme.read_text()
    updated = replace_section(readme, new)
    if args.check:
        if updated != readme:
            print(
                f"{args.readme} is out of date with {args.results}: run python bench/report.py",
                file=sys.stderr,
            )
            return 1
        print(f"{args.readme} is up to date")
        return 0
    if updated != readme:
        args.readme.write_text(updated)
        print(f"wrote {args.readme}")
    else:
        print(f"{args.readme} was up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
