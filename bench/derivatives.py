#!/usr/bin/env python3
"""Thumbnails side by side: fileresponse, sorl-thumbnail and easy-thumbnails, in one run.

All three make ``300x200`` thumbnails cropped at the center (fileresponse
``300x200 fill``, sorl ``crop="center"``, easy-thumbnails ``crop=True``), JPEG
quality 85, from the same generated JPEGs, into fresh storages.

(a) page render: a Django template with 50 thumbnails of 50 uncached 1600x1200
    sources. sorl and easy-thumbnails make each thumbnail while the page renders;
    fileresponse writes signed URLs (thumbnails are made when the browser asks).
    Median of ``--rounds`` renders, each from an empty thumbnail cache.
(b) one thumbnail of a 4000x3000 JPEG, made and stored: sorl ``get_thumbnail``,
    easy-thumbnails ``get_thumbnail``, fileresponse ``obtain_derivative`` (stat,
    process, atomic write; with the default process pool, warm, and with the
    thread executor), the same with the libvips engine (``DERIVATIVES_ENGINE =
    "vips"``, process pool, warm; when pyvips is installed), and each fileresponse
    engine alone. Median of ``--repeat`` runs, each on a source no library has seen.
(c) cache-hit requests per second: uvicorn (one worker) serving the Django site
    bench/apps/deriv_site; ``wrk`` requests a stored thumbnail through the derivative
    URL, and the same file through ``fileresponse.views.serve``. Best of two rounds.

Targets (issue 4): (a) fileresponse at least 20x faster than both peers; (b) at least
as fast as the fastest peer; (c) at least 0.8x plain-file serving.

Results: a table on stdout, bench/results/derivatives.json and derivatives.md.

Usage:
  python bench/derivatives.py            # about a minute on 2 cores
  python bench/derivatives.py --quick    # fewer rounds, 2 s of wrk
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import io
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
    WRK_LUA,
    _kill_group,
    _spawn,
    dist_version,
    free_port,
    have_module,
    http_get,
    parse_wrk,
    wrk_cmd,
)

PAGE_THUMBNAILS = 50
PAGE_SOURCE_SIZE = (1600, 1200)
BIG_SOURCE_SIZE = (4000, 3000)
SPEC = "300x200 fill"
#: Rows of (b), each making `--repeat` thumbnails of sources of its own.
SINGLE_CANDIDATES = 7
QUALITY = 85
TARGETS = {"page_speedup": 20.0, "single_vs_fastest_peer": 1.0, "hit_vs_plain": 0.8}


# --------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------


def make_photo(size: tuple[int, int], seed: int) -> bytes:
    """A photo-like JPEG: smooth gradients, discs, and fine noise (so it does not compress away)."""
    import random

    from PIL import Image, ImageDraw, ImageFilter

    rng = random.Random(seed)
    width, height = size
    small = Image.effect_noise((width // 8, height // 8), 60).convert("RGB")
    tint = Image.new("RGB", small.size, tuple(rng.randrange(60, 200) for _ in range(3)))
    base = Image.blend(small, tint, 0.6).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(base)
    for _ in range(8):
        radius = rng.randrange(height // 16, height // 4)
        x, y = rng.randrange(width), rng.randrange(height)
        draw.ellipse(
            (x - radius, y - radius, x + radius, y + radius),
            fill=tuple(rng.randrange(256) for _ in range(3)),
        )
    base = base.filter(ImageFilter.GaussianBlur(1))
    buffer = io.BytesIO()
    base.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def write_sources(media: Path, repeat: int) -> tuple[list[str], list[str]]:
    (media / "page").mkdir(parents=True)
    (media / "big").mkdir(parents=True)
    page = []
    for number in range(PAGE_THUMBNAILS):
        name = f"page/photo-{number:02d}.jpg"
        (media / name).write_bytes(make_photo(PAGE_SOURCE_SIZE, number))
        page.append(name)
    big_photo = make_photo(BIG_SOURCE_SIZE, 1000)
    big = []
    for number in range(repeat * SINGLE_CANDIDATES + 2):
        # Same pixels, distinct files: every run starts uncached for every library.
        name = f"big/photo-{number:02d}.jpg"
        (media / name).write_bytes(big_photo)
        big.append(name)
    return page, big


# --------------------------------------------------------------------------------------
# Django, in this process, with the three libraries
# --------------------------------------------------------------------------------------


def configure_django(media: Path, derivatives: Path) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only-not-a-secret",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "sorl.thumbnail",
            "easy_thumbnails",
            "fileresponse",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        ROOT_URLCONF="deriv_site.urls",
        MEDIA_ROOT=str(media),
        MEDIA_URL="/media/",
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "OPTIONS": {
                    # Both peers name their library "thumbnail".
                    "libraries": {
                        "sorl_thumbnail": "sorl.thumbnail.templatetags.thumbnail",
                        "easy_thumbnails_tags": "easy_thumbnails.templatetags.thumbnail",
                    }
                },
            }
        ],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        THUMBNAIL_QUALITY=QUALITY,  # sorl and easy-thumbnails both read it
        THUMBNAIL_PREFIX="sorl-cache/",  # sorl
        THUMBNAIL_BASEDIR="easy-cache",  # easy-thumbnails
        FILERESPONSE={"DERIVATIVES_ROOT": str(derivatives), "DERIVATIVES_WORKERS": 2},
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)


TEMPLATES = {
    "fileresponse": (
        "{% load fileresponse %}{% for name in names %}"
        '<img src="{% derivative name "300x200 fill" %}" width="300" height="200">'
        "{% endfor %}"
    ),
    "sorl-thumbnail": (
        "{% load sorl_thumbnail %}{% for name in names %}"
        '{% thumbnail name "300x200" crop="center" as im %}'
        '<img src="{{ im.url }}" width="{{ im.width }}" height="{{ im.height }}">'
        "{% endthumbnail %}{% endfor %}"
    ),
    "easy-thumbnails": (
        "{% load easy_thumbnails_tags %}{% for name in names %}"
        "{% thumbnail name 300x200 crop as im %}"
        '<img src="{{ im.url }}" width="{{ im.width }}" height="{{ im.height }}">'
        "{% endfor %}"
    ),
}


def reset_caches(media: Path, derivatives: Path) -> None:
    """Forget every thumbnail of every library: files, key-value stores, rows."""
    from django.core.cache import cache
    from easy_thumbnails.models import Source, Thumbnail
    from sorl.thumbnail import default as sorl_default

    for directory in (media / "sorl-cache", derivatives):
        shutil.rmtree(directory, ignore_errors=True)
    for path in media.rglob("easy-cache"):
        shutil.rmtree(path, ignore_errors=True)
    sorl_default.kvstore.clear()
    Thumbnail.objects.all().delete()
    Source.objects.all().delete()
    cache.clear()


def count_thumbnails(media: Path, derivatives: Path) -> dict[str, int]:
    def files(root: Path, pattern: str = "*") -> int:
        return sum(1 for path in root.rglob(pattern) if path.is_file()) if root.exists() else 0

    return {
        "sorl-thumbnail": files(media / "sorl-cache"),
        "easy-thumbnails": sum(files(path) for path in media.rglob("easy-cache")),
        "fileresponse": files(derivatives, "*.jpg"),
    }


def bench_page(page: list[str], media: Path, derivatives: Path, rounds: int) -> dict[str, Any]:
    from django.template import Context, Engine

    engine = Engine.get_default()
    results: dict[str, Any] = {}
    for library, source in TEMPLATES.items():
        template = engine.from_string(source)
        times = []
        for _ in range(rounds):
            reset_caches(media, derivatives)
            started = time.perf_counter()
            html = template.render(Context({"names": page}))
            times.append(time.perf_counter() - started)
            made = count_thumbnails(media, derivatives)[library]
            if html.count("<img") != PAGE_THUMBNAILS:
                raise RuntimeError(f"{library}: {html.count('<img')} <img> in the page")
        results[library] = {
            "median_s": statistics.median(times),
            "times_s": times,
            "thumbnails_made_while_rendering": made,
        }
    reset_caches(media, derivatives)
    return results


# --------------------------------------------------------------------------------------
# (b) one thumbnail
# --------------------------------------------------------------------------------------


def bench_single(big: list[str], media: Path, derivatives: Path, repeat: int) -> dict[str, Any]:
    from django.core.files.storage import default_storage
    from easy_thumbnails.files import get_thumbnailer
    from PIL import Image
    from sorl.thumbnail import get_thumbnail

    from fileresponse.conf import get_config
    from fileresponse.derivatives import executor as executor_module
    from fileresponse.derivatives.pipeline import obtain_derivative
    from fileresponse.derivatives.processors import get_engine
    from fileresponse.derivatives.processors.image import ImageJob
    from fileresponse.derivatives.spec import parse_spec
    from fileresponse.derivatives.store import DerivativeStore

    spec = parse_spec(SPEC)
    sources = iter(big)
    outputs: dict[str, tuple[int, int]] = {}

    def sorl_run() -> None:
        thumbnail = get_thumbnail(next(sources), "300x200", crop="center", quality=QUALITY)
        outputs["sorl-thumbnail"] = (thumbnail.width, thumbnail.height)

    def easy_run() -> None:
        thumbnail = get_thumbnailer(next(sources)).get_thumbnail(
            {"size": (300, 200), "crop": True, "quality": QUALITY}
        )
        outputs["easy-thumbnails"] = (thumbnail.width, thumbnail.height)

    def engine_run(engine: str, label: str) -> Any:
        process = get_engine(engine).process

        def run() -> None:
            job = ImageJob(
                spec=spec,
                output_format="jpeg",
                max_source_pixels=50_000_000,
                max_source_bytes=50 * 1024 * 1024,
                path=str(media / next(sources)),
                engine=engine,
            )
            result = process(job)
            outputs[label] = (result.width, result.height)

        return run

    def fileresponse_run(
        executor: executor_module.JobExecutor, label: str, engine: str = "pillow"
    ) -> Any:
        from django.core.files.storage import FileSystemStorage

        store = DerivativeStore(FileSystemStorage(location=str(derivatives)))
        config = get_config(DERIVATIVES_ENGINE=engine)

        async def one() -> None:
            obtained = await obtain_derivative(
                default_storage,
                "default",
                next(sources),
                spec,
                output="jpeg",
                store=store,
                config=config,
            )
            obtained.stored.source.close()
            with Image.open(obtained.stored.stat.path) as image:
                outputs[label] = image.size

        executor_module._executor = executor  # the executor under test, for this process

        def run() -> None:
            asyncio.run(one())

        return run

    process_pool = executor_module.ProcessPoolJobExecutor(max_workers=1)
    threads = executor_module.ThreadJobExecutor(max_workers=1)
    candidates = {
        "sorl-thumbnail": sorl_run,
        "easy-thumbnails": easy_run,
        "fileresponse (process pool, default)": fileresponse_run(
            process_pool, "fileresponse (process pool, default)"
        ),
        "fileresponse (thread executor)": fileresponse_run(
            threads, "fileresponse (thread executor)"
        ),
        "fileresponse engine only": engine_run("pillow", "fileresponse engine only"),
    }
    vips_pool = None
    if have_module("pyvips"):
        # The libvips engine, in a process pool of its own (the default executor).
        vips_pool = executor_module.ProcessPoolJobExecutor(max_workers=1)
        candidates["fileresponse (vips)"] = fileresponse_run(
            vips_pool, "fileresponse (vips)", engine="vips"
        )
        candidates["fileresponse vips engine only"] = engine_run(
            "vips", "fileresponse vips engine only"
        )
    results: dict[str, Any] = {}
    try:
        # Warm the process pools (their start is a one-off per server process, not per thumbnail).
        executor_module._executor = process_pool
        asyncio.run(_warm_pool(process_pool, media / big[-1]))
        if vips_pool is not None:
            asyncio.run(_warm_pool(vips_pool, media / big[-1], engine="vips"))
        for label, run in candidates.items():
            times = []
            for _ in range(repeat):
                reset_caches(media, derivatives)
                started = time.perf_counter()
                run()
                times.append(time.perf_counter() - started)
            results[label] = {"median_s": statistics.median(times), "times_s": times}
    finally:
        executor_module._executor = None
        process_pool.shutdown()
        threads.shutdown()
        if vips_pool is not None:
            vips_pool.shutdown()
    for label, size in outputs.items():
        results[label]["output_size"] = list(size)
    return results


async def _warm_pool(pool: Any, path: Path, engine: str = "pillow") -> None:
    from fileresponse.derivatives.processors.image import ImageJob
    from fileresponse.derivatives.spec import parse_spec

    await pool.run(
        ImageJob(
            parse_spec("10x10"),
            "jpeg",
            50_000_000,
            50 * 1024 * 1024,
            path=str(path),
            engine=engine,
        )
    )


# --------------------------------------------------------------------------------------
# (c) cache hits over HTTP
# --------------------------------------------------------------------------------------


def bench_hits(
    docroot: Path, derivative_path: str, seconds: float, connections: int, tmp: Path
) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(REPO), env.get("PYTHONPATH", "")])
    env["BENCH_DOC_ROOT"] = str(docroot)
    env["PYTHONUNBUFFERED"] = "1"
    command = [
        sys.executable,
        *("-m", "uvicorn", "deriv_site.asgi:application"),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--no-access-log", "--log-level", "warning", "--lifespan", "off"),
    ]
    if have_module("httptools") and have_module("uvloop"):
        command += ["--http", "httptools", "--loop", "uvloop"]
    log = tmp / "uvicorn.log"
    lua = tmp / "report.lua"
    lua.write_text(WRK_LUA)
    with log.open("wb") as log_file:
        server = _spawn(command, env=env, cwd=str(REPO), stdout=log_file, stderr=subprocess.STDOUT)
    try:
        _wait_for(port, derivative_path)
        status, headers, body = http_get(port, derivative_path)  # the miss: made and stored
        if status != 200:
            raise RuntimeError(f"derivative: HTTP {status}: {body[:200]!r}")
        stored = _stored_name(docroot / "derivatives", body)
        plain_path = f"/files/derivatives/{stored}"
        status, _, plain_body = http_get(port, plain_path)
        if status != 200 or plain_body != body:
            raise RuntimeError(f"plain file: HTTP {status}, same bytes: {plain_body == body}")
        urls = {"derivative hit": derivative_path, "plain file": plain_path}
        rates: dict[str, list[float]] = {label: [] for label in urls}
        for _ in range(2):
            for label, path in urls.items():
                result = subprocess.run(
                    wrk_cmd(f"http://127.0.0.1:{port}{path}", connections, 2, seconds, lua, 10),
                    capture_output=True,
                    text=True,
                    check=True,
                )
                data = parse_wrk(result.stdout)
                errors = sum(data["errors"].values())
                if errors:
                    raise RuntimeError(f"{label}: wrk saw {errors} errors")
                rates[label].append(data["requests"] / (data["duration_us"] / 1e6))
        return {
            "bytes": len(body),
            "content_type": headers.get("content-type"),
            "cache_control": headers.get("cache-control"),
            "connections": connections,
            "seconds_per_round": seconds,
            "requests_per_s": {label: max(values) for label, values in rates.items()},
            "rounds_requests_per_s": rates,
        }
    finally:
        _kill_group(server)


def _wait_for(port: int, path: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            http_get(port, "/files/__nothing__", timeout=2)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def _stored_name(root: Path, body: bytes) -> str:
    for path in root.rglob("*.jpg"):
        if path.read_bytes() == body:
            return path.relative_to(root).as_posix()
    raise RuntimeError("the derivative is not in the derivative root")


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


def ratios(report: dict[str, Any]) -> dict[str, Any]:
    page = report["page_render"]
    ours = page["fileresponse"]["median_s"]
    speedups = {
        peer: page[peer]["median_s"] / ours for peer in ("sorl-thumbnail", "easy-thumbnails")
    }
    single = report["single_thumbnail"]
    fastest_peer = min(single["sorl-thumbnail"]["median_s"], single["easy-thumbnails"]["median_s"])
    default = single["fileresponse (process pool, default)"]["median_s"]
    out: dict[str, Any] = {
        "page_speedup": speedups,
        "page_speedup_min": min(speedups.values()),
        "single_fastest_peer_s": fastest_peer,
        "single_vs_fastest_peer": fastest_peer / default,
        "single_thread_vs_fastest_peer": (
            fastest_peer / single["fileresponse (thread executor)"]["median_s"]
        ),
    }
    if "fileresponse (vips)" in single:
        vips = single["fileresponse (vips)"]["median_s"]
        out["single_vips_vs_fastest_peer"] = fastest_peer / vips
        out["single_vips_vs_pillow"] = default / vips
    hits = report["cache_hits"]
    if "requests_per_s" in hits:
        rates = hits["requests_per_s"]
        out["hit_vs_plain"] = rates["derivative hit"] / rates["plain file"]
    out["targets_met"] = {
        "page_speedup": out["page_speedup_min"] >= TARGETS["page_speedup"],
        "single_vs_fastest_peer": (
            out["single_vs_fastest_peer"] >= TARGETS["single_vs_fastest_peer"]
        ),
        "hit_vs_plain": out.get("hit_vs_plain", 0) >= TARGETS["hit_vs_plain"],
    }
    return out


def markdown(report: dict[str, Any]) -> str:
    r = report["ratios"]
    lines = [
        "# Derivatives: fileresponse vs sorl-thumbnail vs easy-thumbnails",
        "",
        f"Run {report['date']} on {report['machine']['cpus']} CPUs, Python "
        f"{report['machine']['python']}; versions: "
        + ", ".join(f"{name} {version}" for name, version in report["versions"].items())
        + ". Produced by `python bench/derivatives.py`; see its docstring for the method.",
        "",
        f"## (a) Rendering a page with {PAGE_THUMBNAILS} uncached thumbnails",
        "",
        "| library | median render | thumbnails made while rendering | fileresponse faster by |",
        "|---|---:|---:|---:|",
    ]
    for library, data in report["page_render"].items():
        speedup = r["page_speedup"].get(library)
        lines.append(
            f"| {library} | {data['median_s'] * 1000:.1f} ms | "
            f"{data['thumbnails_made_while_rendering']} | "
            + (f"{speedup:.0f}x |" if speedup else "- |")
        )
    lines += [
        "",
        f"Target: at least {TARGETS['page_speedup']:.0f}x faster than both: "
        + ("**met**" if r["targets_met"]["page_speedup"] else "**not met**")
        + f" ({r['page_speedup_min']:.0f}x). fileresponse renders URLs only; each thumbnail is"
        " made when the browser first requests it (see (b) for that cost).",
        "",
        "## (b) One 300x200 thumbnail of a 4000x3000 JPEG, made and stored",
        "",
        "| library | median | output |",
        "|---|---:|---|",
    ]
    for library, data in report["single_thumbnail"].items():
        size = "x".join(str(side) for side in data.get("output_size", []))
        lines.append(f"| {library} | {data['median_s'] * 1000:.1f} ms | {size} |")
    lines += [
        "",
        "Target: at least as fast as the fastest peer: "
        + ("**met**" if r["targets_met"]["single_vs_fastest_peer"] else "**not met**")
        + f" (the fastest peer takes {r['single_vs_fastest_peer']:.1f}x the time of fileresponse"
        f" with its default process pool, {r['single_thread_vs_fastest_peer']:.1f}x with threads)."
        + (
            f" With the libvips engine: {r['single_vips_vs_fastest_peer']:.1f}x; libvips takes"
            f" {1 / r['single_vips_vs_pillow']:.2f}x the time of Pillow (process pool both)."
            if "single_vips_vs_pillow" in r
            else ""
        ),
        "",
        "## (c) Cache hits over HTTP (uvicorn, one worker)",
        "",
    ]
    hits = report["cache_hits"]
    if "requests_per_s" in hits:
        lines += [
            "| request | requests/s |",
            "|---|---:|",
            *(f"| {label} | {rate:,.0f} |" for label, rate in hits["requests_per_s"].items()),
            "",
            f"The same {hits['bytes']}-byte JPEG, {hits['connections']} connections, "
            f"{hits['seconds_per_round']:g} s per round, best of two rounds. Target: at least "
            f"{TARGETS['hit_vs_plain']}x plain-file serving: "
            + ("**met**" if r["targets_met"]["hit_vs_plain"] else "**not met**")
            + f" ({r['hit_vs_plain']:.2f}x).",
        ]
    else:
        lines.append(f"Skipped: {hits['skipped']}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, short wrk runs")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    rounds, repeat, seconds = (2, 3, 2.0) if args.quick else (3, 7, 5.0)

    work = HERE / ".work"
    work.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="derivatives-", dir=work))
    try:
        media = tmp / "media"
        derivatives = media / "derivatives"
        print("writing sources ...", flush=True)
        page, big = write_sources(media, repeat)
        configure_django(media, derivatives)
        print(f"(a) a page of {PAGE_THUMBNAILS} thumbnails, {rounds} rounds ...", flush=True)
        page_results = bench_page(page, media, derivatives, rounds)
        print(f"(b) one thumbnail of a 4000x3000 JPEG, {repeat} runs each ...", flush=True)
        single_results = bench_single(big, media, derivatives, repeat)
        print("(c) cache hits over HTTP ...", flush=True)
        from fileresponse.derivatives.signing import signed_path
        from fileresponse.derivatives.spec import parse_spec

        derivative_path = "/derivatives/" + signed_path(page[0], parse_spec(SPEC))
        shutil.rmtree(derivatives, ignore_errors=True)
        hit_results = bench_hits(media, derivative_path, seconds, 32, tmp)
        report: dict[str, Any] = {
            "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "versions": {
                name: dist_version(name) or "?"
                for name in (
                    "fileresponse",
                    "Django",
                    "Pillow",
                    "pyvips",
                    "pyvips-binary",
                    "sorl-thumbnail",
                    "easy-thumbnails",
                )
            },
            "spec": SPEC,
            "quality": QUALITY,
            "page_render": page_results,
            "single_thumbnail": single_results,
            "cache_hits": hit_results,
        }
        report["ratios"] = ratios(report)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "derivatives.json").write_text(json.dumps(report, indent=2) + "\n")
        text = markdown(report)
        (args.out / "derivatives.md").write_text(text)
        print(text)
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
