#!/usr/bin/env python3
"""Media derivatives side by side: a streamed transcode next to the ways users write it today.

Source: a 60 s 1280x720 30 fps H.264/AAC MP4 of ffmpeg's ``testsrc2`` and ``sine``,
made once and cached in bench/.work; a 20-page PDF made with PDFium.

Transcode ``mp4 360p`` (H.264/AAC). The ffmpeg arguments are the library's: the
processor's own :meth:`Processor.command` for the spec, so all three peers run the
same encoder settings. While the video processor makes no transcodes, the spec is
``run=mp4-360p``, a command registered in ``DERIVATIVES_COMMANDS`` that runs ffmpeg
(the report says which one ran).

(a) fileresponse: the derivative URL through uvicorn (bench/apps/media_site), cold:
    a new source version each round; the output is streamed while ffmpeg runs.
(b) today's view: ffmpeg into a temporary file, then ``FileResponse``
    (bench/apps/transcode_site.py, Starlette, the same uvicorn).
(c) ffmpeg alone with the same arguments, its stdout to /dev/null (total only).

Time to first body byte and to the last byte, median of ``--rounds`` (the peers
take turns within a round). Targets (issue 9): (a)'s TTFB at most 10% of (b)'s;
(a)'s total at most 1.1x (c)'s.

Also through the server: ``poster t=50% 640x jpeg`` of the video and
``page=3 800x png`` of the PDF, cold (a new source version per round; the
process pool warmed once first) and as cache hits.

Results: a table on stdout, bench/results/media.json, media.md and media.png
(the table and the plot are made from the JSON: ``--report-only`` remakes them).

Usage:
  python bench/media.py               # about 4 minutes on 2 cores
  python bench/media.py --quick       # a 10 s source, 1 round: a smoke run
  python bench/media.py --report-only # media.md and media.png from media.json
"""

from __future__ import annotations

import argparse
import datetime as _dt
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
APPS = HERE / "apps"
sys.path[:0] = [str(HERE), str(APPS), str(REPO)]

from serve_files import (  # noqa: E402  (helpers of the file benchmark, reused)
    _kill_group,
    _spawn,
    base_env,
    dist_version,
    free_port,
    have_module,
)

SOURCE_SIZE = "1280x720"
SOURCE_RATE = 30
PDF_PAGES = 20
TRANSCODE_SPEC = "mp4 360p"
#: The stand-in while ``mp4 360p`` is refused: a registered command running ffmpeg.
STANDIN_NAME = "mp4-360p"
POSTER_SPEC = "poster t=50% 640x jpeg"
PAGE_SPEC = "page=3 800x png"
TARGETS = {"ttfb_vs_tempfile": 0.10, "total_vs_ffmpeg": 1.10}
#: What ffmpeg writes to stdout for a streamed output (the peers write to a file).
_STDOUT_TARGETS = ("-", "pipe:", "pipe:1")


# --------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def make_video(cache: Path, seconds: int) -> Path:
    """The source video, made once per length (cached in bench/.work)."""
    target = cache / f"testsrc2-{seconds}s-{SOURCE_SIZE}-{SOURCE_RATE}.mp4"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part.mp4")
    lavfi = ("-f", "lavfi", "-i")
    subprocess.run(
        [
            ffmpeg_exe(),
            *("-hide_banner", "-loglevel", "error", "-nostdin", "-y"),
            *lavfi,
            f"testsrc2=size={SOURCE_SIZE}:rate={SOURCE_RATE}:duration={seconds}",
            *lavfi,
            f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            *("-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"),
            *("-c:a", "aac", "-b:a", "128k", "-shortest", "-movflags", "+faststart"),
            str(partial),
        ],
        check=True,
        timeout=600,
    )
    partial.replace(target)
    return target


def make_pdf(pages: int) -> bytes:
    """A document of ``pages`` A4 pages, each with a grid of coloured rectangles."""
    import io

    import pypdfium2
    import pypdfium2.raw as pdfium_c

    document = pypdfium2.PdfDocument.new()
    width, height = 595, 842
    for index in range(pages):
        page = document.new_page(width, height)
        for row in range(8):
            for column in range(6):
                rectangle = pdfium_c.FPDFPageObj_CreateNewRect(
                    40 + column * 88, 60 + row * 92, 70, 70
                )
                shade = (index * 37 + row * 29 + column * 17) % 200
                pdfium_c.FPDFPageObj_SetFillColor(rectangle, shade, 200 - shade, 120, 255)
                pdfium_c.FPDFPath_SetDrawMode(rectangle, pdfium_c.FPDF_FILLMODE_ALTERNATE, False)
                pdfium_c.FPDFPage_InsertObject(page.raw, rectangle)
        pdfium_c.FPDFPage_GenerateContent(page.raw)
        page.close()
    buffer = io.BytesIO()
    document.save(buffer)
    document.close()
    return buffer.getvalue()


def standin_commands(ffmpeg: str) -> dict[str, Any]:
    """``DERIVATIVES_COMMANDS`` with the stand-in transcode (H.264/AAC, fragmented MP4)."""
    return {
        STANDIN_NAME: {
            "argv": [
                ffmpeg,
                *("-hide_banner", "-nostdin", "-loglevel", "error", "-i", "{input}"),
                *("-map", "0:v:0", "-map", "0:a:0?", "-vf", "scale=-2:360"),
                *("-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"),
                *("-c:a", "aac", "-b:a", "128k"),
                *("-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4"),
                "pipe:1",
            ],
            "formats": {"mp4": "video/mp4"},
            "timeout": 600,
        }
    }


# --------------------------------------------------------------------------------------
# the library's transcode
# --------------------------------------------------------------------------------------


def configure_django(docroot: Path, commands: dict[str, Any]) -> None:
    """This process as the media site (same settings, same signing key, same commands)."""
    os.environ["BENCH_DOC_ROOT"] = str(docroot)
    os.environ["BENCH_MEDIA_COMMANDS"] = json.dumps(commands)
    os.environ["DJANGO_SETTINGS_MODULE"] = "media_site.settings"
    import django

    django.setup()


def transcode_spec() -> str:
    """``mp4 360p`` when the video processor takes it, else the registered stand-in."""
    from fileresponse.conf import get_config
    from fileresponse.derivatives.exceptions import ProcessingError
    from fileresponse.derivatives.processors import processor_for
    from fileresponse.derivatives.spec import parse_spec

    spec = parse_spec(TRANSCODE_SPEC)
    processor = processor_for("video.mp4", spec)
    try:
        processor.check(spec, get_config())
    except ProcessingError:
        return f"run={STANDIN_NAME}"
    return TRANSCODE_SPEC if processor.streams(spec) else f"run={STANDIN_NAME}"


def library_argv(spec_text: str, source: Path) -> list[str]:
    """The ffmpeg argv the library runs for ``spec_text`` on ``source`` (output: stdout)."""
    from fileresponse.conf import get_config
    from fileresponse.derivatives.processors import JobInput, processor_for
    from fileresponse.derivatives.spec import parse_spec

    config = get_config()
    spec = parse_spec(spec_text)
    processor = processor_for(source.name, spec)
    processor.check(spec, config)
    output, _ = processor.choose_output(spec, source.name, None, config)
    job = processor.job(spec, output, JobInput(str(source)), config)
    argv = list(processor.command(job).argv)
    if argv[-1] not in _STDOUT_TARGETS:
        raise RuntimeError(f"the library's command does not write to stdout: {argv}")
    return argv


def bare_ffmpeg(argv: list[str]) -> float:
    """Seconds ``argv`` takes with its stdout to /dev/null (the very arguments, unchanged)."""
    started = time.perf_counter()
    run = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    if run.returncode != 0 or run.stderr.strip():
        raise RuntimeError(f"ffmpeg: status {run.returncode}: {run.stderr[-500:]!r}")
    return elapsed


def with_output(argv: list[str], output: str) -> list[str]:
    """``argv`` writing to ``output`` instead of stdout."""
    return [*argv[:-1], output]


# --------------------------------------------------------------------------------------
# HTTP: first byte and last byte
# --------------------------------------------------------------------------------------


def timed_get(port: int, path: str, timeout: float = 900.0) -> dict[str, Any]:
    """GET ``path`` on a new connection: seconds to the first body byte and to the last.

    Also, for a fragmented MP4, the seconds until its first fragment (``moof`` and
    its ``mdat``) had arrived: the first moment a player has frames to show.
    """
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = bytearray()
        arrivals: list[tuple[int, float]] = []  # (bytes so far, seconds)
        while chunk := response.read1(1 << 16):
            body += chunk
            arrivals.append((len(body), time.perf_counter() - started))
        total = time.perf_counter() - started
        fragment_end = first_fragment_end(bytes(body))
        return {
            "status": response.status,
            "ttfb_s": arrivals[0][1] if arrivals else total,
            "first_fragment_s": (
                None
                if fragment_end is None
                else next(seconds for size, seconds in arrivals if size >= fragment_end)
            ),
            "total_s": total,
            "bytes": len(body),
            "chunked": response.getheader("Transfer-Encoding") == "chunked",
            "content_type": response.getheader("Content-Type"),
            "body": bytes(body),
        }
    finally:
        connection.close()


def first_fragment_end(data: bytes) -> int | None:
    """The offset just past the first ``moof`` box and the ``mdat`` after it (MP4 boxes)."""
    offset, seen_moof = 0, False
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        if size < 8:
            return None
        offset += size
        if kind == b"moof":
            seen_moof = True
        elif kind == b"mdat" and seen_moof:
            return offset if offset <= len(data) else None
    return None


def wait_ready(server: subprocess.Popen[bytes], port: int, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/")
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def start_uvicorn(app: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = [
        sys.executable,
        *("-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)),
        *("--no-access-log", "--log-level", "warning", "--lifespan", "off"),
    ]
    if have_module("httptools") and have_module("uvloop"):
        command += ["--http", "httptools", "--loop", "uvloop"]
    with log.open("wb") as log_file:
        server = _spawn(command, env=env, cwd=str(REPO), stdout=log_file, stderr=subprocess.STDOUT)
    wait_ready(server, port, log)
    return server, port


def new_version(path: Path, round_number: int) -> None:
    """A new modification time: a new source version, so the next request is a miss."""
    stamp = time.time() - 3600 + round_number
    os.utime(path, (stamp, stamp))


def probe_mp4(data: bytes, tmp: Path) -> dict[str, Any]:
    """Duration and frame size of an MP4 body (the library's probe parser)."""
    from fileresponse.derivatives.processors.media import parse_probe

    path = tmp / "probe.mp4"
    path.write_bytes(data)
    run = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    info = parse_probe(run.stderr)
    path.unlink()
    return {
        "duration_s": info.duration,
        "size": f"{info.width}x{info.height}",
        "video": info.video_codec,
        "audio": info.audio_codec,
    }


# --------------------------------------------------------------------------------------
# the runs
# --------------------------------------------------------------------------------------


def derivative_path(source_name: str, spec_text: str) -> str:
    from fileresponse.derivatives.signing import signed_path
    from fileresponse.derivatives.spec import parse_spec

    return "/derivatives/" + signed_path(source_name, parse_spec(spec_text))


def _strip(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key != "body"}


def bench_transcode(
    docroot: Path, video: Path, spec_text: str, ports: dict[str, int], rounds: int, tmp: Path
) -> dict[str, Any]:
    argv = library_argv(spec_text, video)
    fileresponse_path = derivative_path(video.name, spec_text)
    tempfile_path = f"/transcode/{video.name}"
    runs: dict[str, list[dict[str, Any]]] = {"fileresponse": [], "tempfile view": [], "ffmpeg": []}
    outputs: dict[str, dict[str, Any]] = {}
    # One unmeasured run: the binary and the source in the page cache for every peer.
    bare_ffmpeg(argv)
    for number in range(rounds):
        print(f"  round {number + 1}/{rounds}", flush=True)
        new_version(video, number)
        answer = timed_get(ports["fileresponse"], fileresponse_path)
        if answer["status"] != 200:
            raise RuntimeError(f"fileresponse: HTTP {answer['status']}: {answer['body'][:300]!r}")
        if number == 0:
            outputs["fileresponse"] = probe_mp4(answer["body"], tmp)
        runs["fileresponse"].append(_strip(answer))

        answer = timed_get(ports["tempfile"], tempfile_path)
        if answer["status"] != 200:
            raise RuntimeError(f"tempfile view: HTTP {answer['status']}: {answer['body'][:300]!r}")
        if number == 0:
            outputs["tempfile view"] = probe_mp4(answer["body"], tmp)
        runs["tempfile view"].append(_strip(answer))

        runs["ffmpeg"].append({"total_s": bare_ffmpeg(argv)})
    results: dict[str, Any] = {}
    for peer, measured in runs.items():
        results[peer] = {
            "total_s": statistics.median(run["total_s"] for run in measured),
            "rounds": measured,
        }
        if peer != "ffmpeg":
            results[peer]["ttfb_s"] = statistics.median(run["ttfb_s"] for run in measured)
            fragments = [run["first_fragment_s"] for run in measured]
            if None not in fragments:
                results[peer]["first_fragment_s"] = statistics.median(fragments)
            results[peer]["bytes"] = measured[0]["bytes"]
            results[peer]["chunked"] = measured[0]["chunked"]
            results[peer]["output"] = outputs[peer]
    return {
        "spec": spec_text,
        "argv": [
            "ffmpeg" if item == ffmpeg_exe() else "SOURCE" if item == str(video) else item
            for item in argv
        ],
        "peers": results,
    }


def bench_latency(
    port: int, source: Path, spec_text: str, rounds: int, hits: int
) -> dict[str, Any]:
    """A derivative cold (a new source version per round, after one warm-up) and as hits."""
    path = derivative_path(source.name, spec_text)
    new_version(source, -1)
    warm = timed_get(port, path)  # the process pool starts: a one-off per server process
    if warm["status"] != 200:
        raise RuntimeError(f"{spec_text}: HTTP {warm['status']}: {warm['body'][:300]!r}")
    cold = []
    for number in range(rounds):
        new_version(source, number)
        cold.append(_strip(timed_get(port, path)))
    hit = [_strip(timed_get(port, path)) for _ in range(hits)]
    return {
        "spec": spec_text,
        "source": source.name,
        "content_type": warm["content_type"],
        "bytes": warm["bytes"],
        "cold_s": statistics.median(run["total_s"] for run in cold),
        "hit_s": statistics.median(run["total_s"] for run in hit),
        "cold_rounds_s": [run["total_s"] for run in cold],
        "hit_rounds_s": [run["total_s"] for run in hit],
    }


# --------------------------------------------------------------------------------------
# report (from the JSON alone)
# --------------------------------------------------------------------------------------


def ratios(report: dict[str, Any]) -> dict[str, Any]:
    peers = report["transcode"]["peers"]
    ours = peers["fileresponse"]
    ttfb = ours["ttfb_s"] / peers["tempfile view"]["ttfb_s"]
    total = ours["total_s"] / peers["ffmpeg"]["total_s"]
    return {
        "ttfb_vs_tempfile": ttfb,
        "total_vs_tempfile": ours["total_s"] / peers["tempfile view"]["total_s"],
        "first_fragment_vs_tempfile": (
            ours["first_fragment_s"] / peers["tempfile view"]["ttfb_s"]
            if "first_fragment_s" in ours
            else None
        ),
        "total_vs_ffmpeg": total,
        "tempfile_total_vs_ffmpeg": peers["tempfile view"]["total_s"] / peers["ffmpeg"]["total_s"],
        "targets_met": {
            "ttfb_vs_tempfile": ttfb <= TARGETS["ttfb_vs_tempfile"],
            "total_vs_ffmpeg": total <= TARGETS["total_vs_ffmpeg"],
        },
    }


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f} ms"


def summary_line(report: dict[str, Any]) -> str:
    """One sentence of the figures (README.md quotes it)."""
    peers = report["transcode"]["peers"]
    r = report["ratios"]
    latency = report["latency"]
    return (
        f"`{report['transcode']['spec']}` of a {report['source']['seconds']} s 720p video: first "
        f"byte after {_ms(peers['fileresponse']['ttfb_s'])} "
        f"({r['ttfb_vs_tempfile']:.3f}x the ffmpeg-to-a-temporary-file view's "
        f"{_ms(peers['tempfile view']['ttfb_s'])}), the first playable fragment after "
        f"{_ms(peers['fileresponse'].get('first_fragment_s'))}, all of it in "
        f"{_ms(peers['fileresponse']['total_s'])} ({r['total_vs_ffmpeg']:.2f}x bare ffmpeg's "
        f"{_ms(peers['ffmpeg']['total_s'])}); a poster frame {_ms(latency['poster']['cold_s'])} "
        f"cold, {_ms(latency['poster']['hit_s'])} cached; a PDF page "
        f"{_ms(latency['pdf page']['cold_s'])} cold, {_ms(latency['pdf page']['hit_s'])} cached."
    )


def markdown(report: dict[str, Any]) -> str:
    transcode = report["transcode"]
    peers = transcode["peers"]
    r = report["ratios"]
    met = {True: "**met**", False: "**not met**"}
    standin = transcode["spec"] != TRANSCODE_SPEC
    lines = [
        "# Media derivatives: a streamed transcode next to a temporary file and bare ffmpeg",
        "",
        f"Run {report['date']} on {report['machine']['cpus']} CPUs, Python "
        f"{report['machine']['python']}, load average {report['machine']['load_average']:.2f} "
        f"at the start, {report['machine'].get('load_average_end', 0):.2f} at the end; versions: "
        + ", ".join(f"{name} {version}" for name, version in report["versions"].items())
        + ". Produced by `python bench/media.py`; see its docstring for the method.",
        "",
        f"## `{transcode['spec']}` of a {report['source']['seconds']} s {report['source']['size']}"
        f" {report['source']['rate']} fps H.264/AAC video",
        "",
        f"Median of {report['rounds']} rounds; ffmpeg arguments (the library's, for all peers): "
        f"`{' '.join(transcode['argv'])}`.",
        "",
    ]
    if standin:
        lines += [
            f"`{TRANSCODE_SPEC}` was not available from the video processor in this run: the "
            f"spec is `{transcode['spec']}`, a command registered in `DERIVATIVES_COMMANDS` that "
            "runs ffmpeg (streamed by the same code as any streaming processor).",
            "",
        ]
    rows = [
        ("fileresponse (derivative URL, uvicorn, cold)", "fileresponse"),
        ("ffmpeg to a temporary file, then FileResponse (Starlette, uvicorn)", "tempfile view"),
        ("ffmpeg alone, stdout to /dev/null", "ffmpeg"),
    ]
    lines += [
        "| peer | first byte | TTFB / temp-file view | first fragment | total | "
        "total / bare ffmpeg | output |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for label, key in rows:
        peer = peers[key]
        ttfb = peer.get("ttfb_s")
        output = peer.get("output")
        shown = (
            f"{output['size']} {output['video']}/{output['audio']}, {output['duration_s']:g} s, "
            f"{peer['bytes'] / 1024 / 1024:.1f} MiB" + (", chunked" if peer["chunked"] else "")
            if output
            else "-"
        )
        lines.append(
            f"| {label} | {_ms(ttfb)} | "
            + (f"{ttfb / peers['tempfile view']['ttfb_s']:.3f}x" if ttfb else "-")
            + f" | {_ms(peer.get('first_fragment_s'))}"
            + f" | {_ms(peer['total_s'])} | {peer['total_s'] / peers['ffmpeg']['total_s']:.2f}x"
            f" | {shown} |"
        )
    lines += [
        "",
        f"Targets: first byte at most {TARGETS['ttfb_vs_tempfile']:.0%} of the temporary-file "
        f"view's: {met[r['targets_met']['ttfb_vs_tempfile']]} ({r['ttfb_vs_tempfile']:.3f}x); "
        f"total at most {TARGETS['total_vs_ffmpeg']}x bare ffmpeg's: "
        f"{met[r['targets_met']['total_vs_ffmpeg']]} ({r['total_vs_ffmpeg']:.2f}x; the "
        f"temporary-file view: {r['tempfile_total_vs_ffmpeg']:.2f}x).",
        "",
        "First byte: the first body bytes on the wire (for a fragmented MP4, its header: "
        "`ftyp` and an empty `moov`); first fragment: when the first `moof` and its `mdat` "
        "had arrived, the first frames a player can show.",
        "",
        "## Stills through the server (uvicorn, process pool warmed once)",
        "",
        "| derivative | source | cold | cache hit | cold / hit | output |",
        "|---|---|---:|---:|---:|---|",
    ]
    for data in report["latency"].values():
        lines.append(
            f"| `{data['spec']}` | {data['source']} | {_ms(data['cold_s'])} | "
            f"{data['hit_s'] * 1000:.1f} ms | {data['cold_s'] / data['hit_s']:.0f}x | "
            f"{data['content_type']}, {data['bytes'] / 1024:.0f} KiB |"
        )
    lines += [
        "",
        f"Cold: median of {report['rounds']} requests, each after a new source version (a new "
        f"modification time); hits: median of {report['hits']} requests, each on a new "
        "connection.",
        "",
        "Summary: " + summary_line(report),
    ]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed"
    peers = report["transcode"]["peers"]
    names = ["fileresponse", "tempfile view", "ffmpeg"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    positions = range(len(names))
    total = [peers[name]["total_s"] for name in names]
    width = 0.38
    streamed = [index for index, name in enumerate(names) if "ttfb_s" in peers[name]]
    bars = left.bar(
        [index - width / 2 for index in streamed],
        [peers[names[index]]["ttfb_s"] for index in streamed],
        width,
        label="first byte",
    )
    left.bar_label(bars, fmt="%.2f", fontsize=8)
    bars = left.bar(
        [p + width / 2 for p in positions], total, width, label="last byte", color="#999999"
    )
    left.bar_label(bars, fmt="%.2f", fontsize=8)
    left.set_xticks(
        list(positions),
        [
            "fileresponse\n(streamed)",
            "ffmpeg to a temp\nfile, then serve",
            "bare ffmpeg\n(stdout to /dev/null)",
        ],
    )
    left.set_ylabel("seconds (lower is better)")
    left.set_title(f"{report['transcode']['spec']} of a {report['source']['seconds']} s 720p video")
    left.legend()
    latency = report["latency"]
    labels = list(latency)
    cold = [latency[label]["cold_s"] * 1000 for label in labels]
    hit = [latency[label]["hit_s"] * 1000 for label in labels]
    positions = range(len(labels))
    bars = right.bar([p - width / 2 for p in positions], cold, width, label="cold")
    right.bar_label(bars, fmt="%.0f", fontsize=8)
    bars = right.bar(
        [p + width / 2 for p in positions], hit, width, label="cache hit", color="#999999"
    )
    right.bar_label(bars, fmt="%.1f", fontsize=8)
    right.set_xticks(list(positions), [latency[label]["spec"] for label in labels])
    right.set_yscale("log")
    right.set_ylabel("ms, log scale (lower is better)")
    right.set_title("Stills through the server")
    right.legend()
    figure.suptitle(
        f"bench/media.py, {report['date']}, {report['machine']['cpus']} CPUs, "
        f"median of {report['rounds']} rounds"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None


def write_report(report: dict[str, Any], out: Path) -> str:
    text = markdown(report)
    (out / "media.md").write_text(text)
    problem = plot(report, out / "media.png")
    if problem:
        print(f"no plot: {problem}", file=sys.stderr)
    return text


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 10 s source, 1 round")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per peer (default 5)")
    parser.add_argument("--seconds", type=int, default=None, help="source length (default 60)")
    parser.add_argument("--report-only", action="store_true", help="remake .md and .png from .json")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        report = json.loads((args.out / "media.json").read_text())
        print(write_report(report, args.out))
        return 0
    rounds = args.rounds or (1 if args.quick else 5)
    seconds = args.seconds or (10 if args.quick else 60)
    hits = 5 if args.quick else 20

    work = HERE / ".work"
    work.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="media-", dir=work))
    servers: list[subprocess.Popen[bytes]] = []
    load_average = os.getloadavg()[0]
    try:
        docroot = tmp / "media"
        docroot.mkdir()
        print(
            f"source: a {seconds} s {SOURCE_SIZE} video (cached), a {PDF_PAGES}-page PDF",
            flush=True,
        )
        video = docroot / "video.mp4"
        shutil.copyfile(make_video(work / "media-sources", seconds), video)
        document = docroot / "document.pdf"
        document.write_bytes(make_pdf(PDF_PAGES))
        ffmpeg = ffmpeg_exe()
        commands = standin_commands(ffmpeg)
        configure_django(docroot, commands)
        spec_text = transcode_spec()
        print(f"transcode spec: {spec_text}", flush=True)
        argv_template = [
            "{input}" if item == str(video) else item
            for item in with_output(library_argv(spec_text, video), "{output}")
        ]
        env = base_env(docroot)
        env["BENCH_MEDIA_COMMANDS"] = json.dumps(commands)
        env["BENCH_TRANSCODE_ARGV"] = json.dumps(argv_template)
        env["DJANGO_SETTINGS_MODULE"] = "media_site.settings"
        fileresponse, fileresponse_port = start_uvicorn(
            "media_site.asgi:application", env, tmp / "media_site.log"
        )
        servers.append(fileresponse)
        temporary, temporary_port = start_uvicorn(
            "transcode_site:app", env, tmp / "transcode_site.log"
        )
        servers.append(temporary)
        ports = {"fileresponse": fileresponse_port, "tempfile": temporary_port}
        print(f"transcode, {rounds} rounds of the three peers ...", flush=True)
        transcode = bench_transcode(docroot, video, spec_text, ports, rounds, tmp)
        print("poster and pdf page, cold and cached ...", flush=True)
        latency = {
            "poster": bench_latency(fileresponse_port, video, POSTER_SPEC, max(rounds, 5), hits),
            "pdf page": bench_latency(fileresponse_port, document, PAGE_SPEC, max(rounds, 5), hits),
        }
        report: dict[str, Any] = {
            "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "load_average": load_average,
                "load_average_end": os.getloadavg()[0],
            },
            "versions": {
                name: dist_version(name) or "?"
                for name in (
                    "fileresponse",
                    "Django",
                    "uvicorn",
                    "starlette",
                    "imageio-ffmpeg",
                    "pypdfium2",
                )
            },
            "source": {
                "seconds": seconds,
                "size": SOURCE_SIZE,
                "rate": SOURCE_RATE,
                "bytes": video.stat().st_size,
                "pdf_pages": PDF_PAGES,
            },
            "rounds": rounds,
            "hits": hits,
            "transcode": transcode,
            "latency": latency,
        }
        report["ratios"] = ratios(report)
        (args.out / "media.json").write_text(json.dumps(report, indent=2) + "\n")
        print(write_report(report, args.out))
        return 0
    finally:
        for server in servers:
            _kill_group(server)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
