#!/usr/bin/env python3
"""Thumbnails side by side: fileresponse, sorl-thumbnail, easy-thumbnails and thumbor, in one run.

All of them make ``300x200`` thumbnails cropped at the center (fileresponse
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
(d) a thumbnail service against thumbor 7 (``--processes=2``; file loader, no source
    storage, file result storage that stores unsafe URLs, unsafe URLs, ``QUALITY = 85``,
    installed by this script into its own venv, THUMBOR_VENV, with a Python 3.12 or 3.11;
    skipped with the reason when that fails). fileresponse runs under gunicorn, 2 workers
    (``fileresponse.workers.UvicornWorker`` when it imports, else uvicorn-worker's), site
    bench/apps/deriv_site with the ASGI fast path for its derivative URLs
    (``deriv_site.fastpath_settings``: the production setup, compared for the targets), and
    the same site through Django's URLconf (``deriv_site.settings``, for information). The
    servers run at once and take turns. Cold misses: per round,
    24 misses on other sources to warm up, then 24 distinct 300x200 centre crops (thumbor
    ``300x200/filters:quality(85)``) of 24 distinct 3000x2000 JPEGs, 4 clients at a time:
    misses/s (median round), p50/p99, CPU of each server's process tree per miss. Cache
    hits: wrk on 6 stored thumbnails in turn, requests/s (best round) and CPU per request.
    Every answer must be a 300x200 JPEG; a hit the bytes of its miss. Then the image work
    alone on the same sources (decode at 1/8 and 1/4 scale, fileresponse's engine), in
    this process: the floor of a miss's CPU.

Targets: (a) fileresponse at least 20x faster than both peers; (b) at least as fast as
the fastest peer; (c) at least 0.8x plain-file serving (issue 4); (d) cold misses and cache
hits at least 1.5x thumbor's rates.

Results: a table on stdout, bench/results/derivatives.json and derivatives.md.

Usage:
  python bench/derivatives.py            # about two minutes on 2 cores
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
    _kill_group,
    _spawn,
    _tree_cpu_seconds,
    dist_version,
    free_port,
    have_module,
    http_get,
    parse_wrk,
    percentile,
    wrk_cmd,
)

#: wrk's summary as one JSON line, as bench/serve_files.py's parse_wrk reads it.
WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p99":%d,"max":%d}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(99), latency.max))
end
"""
PAGE_THUMBNAILS = 50
PAGE_SOURCE_SIZE = (1600, 1200)
BIG_SOURCE_SIZE = (4000, 3000)
SPEC = "300x200 fill"
#: Rows of (b), each making `--repeat` thumbnails of sources of its own.
SINGLE_CANDIDATES = 7
QUALITY = 85
TARGETS = {
    "page_speedup": 20.0,
    "single_vs_fastest_peer": 1.0,
    "hit_vs_plain": 0.8,
    "miss_vs_thumbor": 1.5,
    "hit_vs_thumbor": 1.5,
}


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
# (d) a thumbnail service: thumbor next to fileresponse under gunicorn
# --------------------------------------------------------------------------------------

COLD_SOURCES = 24
COLD_SOURCE_SIZE = (3000, 2000)
COLD_CONCURRENCY = 4
SERVICE_PROCESSES = 2
HIT_THUMBNAILS = 6
#: The fileresponse servers of (d): its settings module, and its derivatives' folder under the
#: media root. The first is the production setup (the ASGI fast path answers derivative URLs
#: before Django's URLs, middleware and signals), compared with thumbor for the targets; the
#: other, the same site through Django's request cycle, is reported for information.
FILERESPONSE_SERVICES = {
    "fileresponse": ("deriv_site.fastpath_settings", "derivatives"),
    "fileresponse (Django path)": ("deriv_site.settings", "derivatives-django"),
}
HIT_CONNECTIONS = 32
#: Thumbnails compared with a full-decode Lanczos reference (PSNR), per peer.
FIDELITY_SAMPLES = 4
THUMBOR_OPTIONS = f"300x200/filters:quality({QUALITY})"  # plain centre crop, no smart
THUMBOR_REQUIREMENTS = ["thumbor>=7,<8"]
#: Outside the repository, kept between runs (like bench/serve_minio.py's venv, which is
#: rebuilt when it no longer imports).
THUMBOR_VENV = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "fileresponse-bench"
    / "thumbor-venv"
)
WRK_PATHS_LUA = r"""
local paths = {%s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def _thumbor_base_python() -> str | None:
    """A Python that thumbor 7 supports (3.12 or 3.11: pyenv's, else on PATH)."""
    home = Path.home()
    candidates = [
        *sorted(home.glob(".pyenv/versions/3.12*/bin/python3"), reverse=True),
        *sorted(home.glob(".pyenv/versions/3.11*/bin/python3"), reverse=True),
        *(Path(p) for p in (shutil.which("python3.12"), shutil.which("python3.11")) if p),
    ]
    for candidate in candidates:
        probe = subprocess.run(
            [str(candidate), "-c", "import sys, venv; print(sys.version_info[:2] >= (3, 10))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return str(candidate)
    return None


def ensure_thumbor_venv() -> tuple[str | None, str | None]:
    """(thumbor's executable in its own venv, None) or (None, why it cannot be had)."""
    thumbor = THUMBOR_VENV / "bin" / "thumbor"
    python = THUMBOR_VENV / "bin" / "python"
    check = [str(python), "-c", "import thumbor.server, thumbor.loaders.file_loader"]
    if thumbor.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return str(thumbor), None
    base = _thumbor_base_python()
    if base is None:
        return None, "no Python 3.11 or 3.12 found for thumbor's venv"
    print(f"[thumbor] creating {THUMBOR_VENV} with {base}", flush=True)
    shutil.rmtree(THUMBOR_VENV, ignore_errors=True)
    THUMBOR_VENV.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [base, "-m", "venv", str(THUMBOR_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", *THUMBOR_REQUIREMENTS],
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, check=False, timeout=900)
        except subprocess.TimeoutExpired:
            return None, f"{' '.join(step[:4])} timed out"
        if done.returncode != 0:
            return None, f"{' '.join(step[:4])} failed: {(done.stdout + done.stderr)[-800:]}"
    failed = subprocess.run(check, capture_output=True, text=True, check=False)
    if failed.returncode != 0:
        return None, f"thumbor does not import: {failed.stderr[-800:]}"
    return str(thumbor), None


def _venv_versions(python: str, names: tuple[str, ...]) -> dict[str, str]:
    probe = (
        "import importlib.metadata as m, json, sys; "
        "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    )
    done = subprocess.run([python, "-c", probe, *names], capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def write_cold_sources(media: Path, rounds: int) -> list[dict[str, list[str]]]:
    """Per round: 24 sources to measure and 24 to warm up on, 3000x2000 JPEGs, all distinct files.

    The first round's measured sources have pixels of their own; the other files are copies
    of them under new names (no peer caches by content).
    """
    from concurrent.futures import ProcessPoolExecutor

    folder = media / "cold"
    folder.mkdir(parents=True)
    with ProcessPoolExecutor(max_workers=2) as pool:
        photos = list(pool.map(make_photo, [COLD_SOURCE_SIZE] * COLD_SOURCES, range(COLD_SOURCES)))
    plan = []
    for number in range(rounds):
        names: dict[str, list[str]] = {"measured": [], "warm-up": []}
        for kind, prefix in (("measured", "photo"), ("warm-up", "warm")):
            for index, photo in enumerate(photos):
                name = f"cold/r{number}-{prefix}-{index:02d}.jpg"
                (media / name).write_bytes(photo)
                names[kind].append(name)
        plan.append(names)
    return plan


def thumbor_conf(media: Path, results: Path) -> str:
    settings = {
        "LOADER": "thumbor.loaders.file_loader",
        "FILE_LOADER_ROOT_PATH": str(media),
        # The loader reads local files: no copy of each original in a source storage.
        "STORAGE": "thumbor.storages.no_storage",
        "RESULT_STORAGE": "thumbor.result_storages.file_storage",
        "RESULT_STORAGE_FILE_STORAGE_ROOT_PATH": str(results),
        "RESULT_STORAGE_STORES_UNSAFE": True,
        "ALLOW_UNSAFE_URL": True,
        "SECURITY_KEY": "bench-only-not-a-secret",
        "QUALITY": QUALITY,
    }
    return "".join(f"{key} = {value!r}\n" for key, value in settings.items())


def thumbor_path(name: str) -> str:
    from urllib.parse import quote

    return f"/unsafe/{THUMBOR_OPTIONS}/{quote(name)}"


def fileresponse_path(name: str) -> str:
    from fileresponse.derivatives.signing import signed_path
    from fileresponse.derivatives.spec import parse_spec

    return "/derivatives/" + signed_path(name, parse_spec(SPEC))


def gunicorn_worker_class() -> str:
    """fileresponse's own uvicorn worker when this tree has it, else uvicorn-worker's."""
    probe = [sys.executable, "-c", "from fileresponse.workers import UvicornWorker"]
    found = subprocess.run(probe, capture_output=True, cwd=str(REPO), check=False)
    return (
        "fileresponse.workers.UvicornWorker"
        if found.returncode == 0
        else "uvicorn_worker.UvicornWorker"
    )


def _service_command(
    peer: str, port: int, media: Path, tmp: Path, thumbor: str | None
) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    if peer == "thumbor":
        assert thumbor is not None
        conf = tmp / "thumbor.conf"
        conf.write_text(thumbor_conf(media, tmp / "thumbor-results"))
        command = [
            thumbor,
            *("--ip", "127.0.0.1", "--port", str(port), "--conf", str(conf)),
            *("--log-level", "warning", f"--processes={SERVICE_PROCESSES}"),
        ]
        return command, env
    settings_module, folder = FILERESPONSE_SERVICES[peer]
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(REPO), env.get("PYTHONPATH", "")])
    env["BENCH_DOC_ROOT"] = str(media)
    env["BENCH_DERIVATIVES_DIR"] = folder
    env["DJANGO_SETTINGS_MODULE"] = settings_module
    command = [
        *(sys.executable, "-m", "gunicorn", "deriv_site.asgi:application"),
        *("--bind", f"127.0.0.1:{port}", "--workers", str(SERVICE_PROCESSES)),
        *("--worker-class", gunicorn_worker_class(), "--log-level", "warning"),
        *("--graceful-timeout", "2", "--timeout", "60"),
    ]
    return command, env


def _timed_get(port: int, path: str) -> tuple[float, int, dict, bytes]:
    started = time.perf_counter()
    status, headers, body = http_get(port, path)
    return time.perf_counter() - started, status, headers, body


def _fetch_all(port: int, paths: list[str], concurrency: int) -> tuple[float, list[tuple]]:
    """GET every path, ``concurrency`` at a time (a fresh connection each): wall time, answers."""
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        answers = list(pool.map(lambda path: _timed_get(port, path), paths))
    return time.perf_counter() - started, answers


def check_thumbnail(peer: str, path: str, status: int, headers: dict, body: bytes) -> None:
    """A JPEG of 300x200 pixels, or RuntimeError."""
    from PIL import Image

    if status != 200:
        raise RuntimeError(f"{peer} {path}: HTTP {status}: {body[:200]!r}")
    kind = headers.get("content-type", "")
    with Image.open(io.BytesIO(body)) as image:
        if image.format != "JPEG" or image.size != (300, 200) or "image/jpeg" not in kind:
            raise RuntimeError(
                f"{peer} {path}: {image.format} {image.size} ({kind}), not a 300x200 JPEG"
            )


def _count_files(root: Path, suffix: str = "") -> int:
    if not root.exists():
        return 0
    return sum(
        1
        for path in root.rglob("*")
        if path.is_file() and path.name.endswith(suffix) and not path.name.startswith(".")
    )


def _wrk_paths(port: int, paths: list[str], seconds: float, tmp: Path) -> tuple[float, int]:
    """wrk on ``paths`` in turn: (requests/s, requests)."""
    lua = tmp / "paths.lua"
    lua.write_text(WRK_PATHS_LUA % ", ".join(json.dumps(p) for p in paths) + WRK_LUA)
    result = subprocess.run(
        wrk_cmd(f"http://127.0.0.1:{port}/", HIT_CONNECTIONS, 2, seconds, lua, 10),
        capture_output=True,
        text=True,
        check=True,
    )
    data = parse_wrk(result.stdout)
    errors = sum(data["errors"].values())
    if errors:
        raise RuntimeError(f"wrk saw {errors} errors: {data['errors']}")
    return data["requests"] / (data["duration_us"] / 1e6), data["requests"]


class _Service:
    """One peer's server: its URLs, what it has stored, the CPU time of its processes."""

    def __init__(self, peer: str, media: Path, tmp: Path, thumbor: str | None = None) -> None:
        self.peer = peer
        self.url = thumbor_path if peer == "thumbor" else fileresponse_path
        # thumbor names its results by a hash, with no extension; fileresponse's end in .jpg.
        self.stored_root = (
            tmp / "thumbor-results" if peer == "thumbor" else media / FILERESPONSE_SERVICES[peer][1]
        )
        self.suffix = "" if peer == "thumbor" else ".jpg"
        self.port = free_port()
        self.command, env = _service_command(peer, self.port, media, tmp, thumbor)
        self.log = tmp / f"{peer.split()[0]}-{self.port}.log"
        self.tmp = tmp
        with self.log.open("wb") as log_file:
            self.server = _spawn(
                self.command, env=env, cwd=str(tmp), stdout=log_file, stderr=subprocess.STDOUT
            )
        self.expected = 0  # thumbnails it should have stored so far
        self.rounds: list[dict[str, Any]] = []
        self.latencies: list[float] = []
        self.bodies: dict[str, bytes] = {}
        self.hits: list[dict[str, float]] = []

    def wait(self) -> None:
        try:
            _wait_for(self.port, "/")
        except RuntimeError:
            raise RuntimeError(
                f"{self.peer} did not start: {self.log.read_text()[-1500:]}"
            ) from None

    def stop(self) -> None:
        _kill_group(self.server)

    def cpu_seconds(self) -> float:
        return _tree_cpu_seconds(self.server.pid)

    def pool_cpu_seconds(self) -> float:
        """CPU seconds of the processing pools' processes (fileresponse's; reaped ones included)."""
        return _pool_cpu_seconds(self.server.pid)

    def stored(self, expected: int | None = None) -> int:
        # thumbor stores a result just after it has sent it: give the last one a moment.
        deadline = time.monotonic() + 2.0
        while True:
            count = _count_files(self.stored_root, self.suffix)
            if expected is None or count >= expected or time.monotonic() > deadline:
                return count
            time.sleep(0.02)

    def misses(self, names: list[str]) -> tuple[float, list[tuple], float]:
        """Request a thumbnail of each source, all misses: (wall s, answers, CPU s)."""
        before, cpu = self.stored(self.expected), self.cpu_seconds()
        paths = [self.url(name) for name in names]
        wall, answers = _fetch_all(self.port, paths, COLD_CONCURRENCY)
        cpu = self.cpu_seconds() - cpu
        self.expected += len(paths)
        made = self.stored(self.expected) - before
        if made != len(paths):
            raise RuntimeError(f"{self.peer}: {made} thumbnails stored for {len(paths)} misses")
        for path, (_, status, headers, body) in zip(paths, answers, strict=True):
            check_thumbnail(self.peer, path, status, headers, body)
        return wall, list(zip(paths, answers, strict=True)), cpu

    def measure_round(self, names: dict[str, list[str]]) -> None:
        self.misses(names["warm-up"])
        pool = self.pool_cpu_seconds()
        wall, answers, cpu = self.misses(names["measured"])
        pool = self.pool_cpu_seconds() - pool
        for path, (elapsed, _, _, body) in answers:
            self.latencies.append(elapsed)
            self.bodies[path] = body
        count = len(answers)
        self.rounds.append(
            {
                "misses": count,
                "wall_s": wall,
                "misses_per_s": count / wall,
                "cpu_ms_per_miss": cpu / count * 1000,
                "pool_cpu_ms_per_miss": pool / count * 1000,
            }
        )

    def hit_paths(self) -> list[str]:
        paths = list(self.bodies)[:HIT_THUMBNAILS]
        for path in paths:
            status, headers, body = http_get(self.port, path)
            check_thumbnail(self.peer, path, status, headers, body)
            if body != self.bodies[path]:
                raise RuntimeError(f"{self.peer} {path}: a hit is not the bytes of the miss")
        return paths

    def measure_hits(self, paths: list[str], seconds: float) -> None:
        stored, cpu = self.stored(), self.cpu_seconds()
        rate, requests = _wrk_paths(self.port, paths, seconds, self.tmp)
        cpu = self.cpu_seconds() - cpu
        if self.stored() != stored:
            raise RuntimeError(f"{self.peer}: thumbnails were made during the cache-hit run")
        self.hits.append({"requests_per_s": rate, "cpu_us_per_request": cpu / requests * 1e6})

    def report(self, seconds: float) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        best = max(self.hits, key=lambda each: each["requests_per_s"])
        return {
            "command": " ".join([Path(self.command[0]).name, *self.command[1:]]).replace(
                str(self.tmp), "<tmp>"
            ),
            **(
                {"settings": FILERESPONSE_SERVICES[self.peer][0]}
                if self.peer in FILERESPONSE_SERVICES
                else {}
            ),
            "cold": {
                "concurrency": COLD_CONCURRENCY,
                "rounds": self.rounds,
                "misses_per_s": statistics.median(r["misses_per_s"] for r in self.rounds),
                "cpu_ms_per_miss": statistics.median(r["cpu_ms_per_miss"] for r in self.rounds),
                # The processes of the processing pool (the image work), and the rest: the
                # server (HTTP, look-ups, locks, writes, the hand-off to the pool).
                "pool_cpu_ms_per_miss": statistics.median(
                    r["pool_cpu_ms_per_miss"] for r in self.rounds
                ),
                "server_cpu_ms_per_miss": statistics.median(
                    r["cpu_ms_per_miss"] - r["pool_cpu_ms_per_miss"] for r in self.rounds
                ),
                "p50_ms": percentile(ordered, 50) * 1000,
                "p99_ms": percentile(ordered, 99) * 1000,
                "max_ms": ordered[-1] * 1000,
                "thumbnail_bytes_median": statistics.median(len(b) for b in self.bodies.values()),
            },
            "hits": {
                "thumbnails": HIT_THUMBNAILS,
                "connections": HIT_CONNECTIONS,
                "seconds_per_round": seconds,
                "requests_per_s": best["requests_per_s"],
                "cpu_us_per_request": statistics.median(h["cpu_us_per_request"] for h in self.hits),
                "rounds": self.hits,
            },
        }


def _pool_cpu_seconds(pid: int) -> float:
    """CPU seconds of the ``multiprocessing`` processes under ``pid`` (forkserver and workers).

    The forkserver reaps the workers it forked, so their CPU is in its children's times.
    """
    import psutil

    try:
        processes = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            if "multiprocessing" not in " ".join(process.cmdline()):
                continue
            times = process.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def miss_floor(media: Path, names: list[str]) -> dict[str, Any]:
    """CPU of the image work alone per cold miss, in this process (median over ``names``).

    The JPEG decoded at 1/8 scale (DCT scaling to no less than the box: thumbor's draft of
    these sources) and at 1/4 (no less than twice the box: fileresponse's), then
    fileresponse's whole engine (decode, Lanczos, encode) on the same file. No libjpeg
    decodes a baseline JPEG without reading all of its entropy-coded data, whatever the scale.
    """
    from PIL import Image

    from fileresponse.derivatives.processors.image import ImageJob, process_image
    from fileresponse.derivatives.spec import parse_spec

    spec = parse_spec(SPEC)
    width, height = 300, 200

    def decode(path: Path, scale: int) -> None:
        with Image.open(path) as image:
            image.draft("RGB", (image.width // scale, image.height // scale))
            image.load()

    def engine(path: Path) -> None:
        process_image(ImageJob(spec, "jpeg", 50_000_000, 50 * 1024 * 1024, path=str(path)))

    work = {
        "decode_1_8_ms": lambda path: decode(path, 8),
        "decode_1_4_ms": lambda path: decode(path, 4),
        "engine_ms": engine,
    }
    out: dict[str, Any] = {"thumbnail": f"{width}x{height}", "sources": len(names)}
    for label, run in work.items():
        run(media / names[0])  # warm: imports, caches
        times = []
        for name in names:
            started = time.process_time()
            run(media / name)
            times.append(time.process_time() - started)
        out[label] = statistics.median(times) * 1000
    return out


def _fidelity(services: list[_Service], media: Path, names: list[str]) -> dict[str, float]:
    """Mean PSNR (dB) of each peer's thumbnails against a full decode resized with Lanczos.

    The sources are 3:2 already, so the centre crop is the whole picture.
    """
    import math

    from PIL import Image, ImageChops, ImageStat

    scores: dict[str, list[float]] = {service.peer: [] for service in services}
    for name in names:
        with Image.open(media / name) as source:
            reference = source.convert("RGB").resize((300, 200), Image.Resampling.LANCZOS)
        for service in services:
            with Image.open(io.BytesIO(service.bodies[service.url(name)])) as thumbnail:
                difference = ImageChops.difference(thumbnail.convert("RGB"), reference)
            mse = sum(rms * rms for rms in ImageStat.Stat(difference).rms) / 3
            scores[service.peer].append(10 * math.log10(255**2 / max(mse, 1e-9)))
    return {peer: statistics.mean(values) for peer, values in scores.items()}


def bench_services(
    plan: list[dict[str, list[str]]], media: Path, tmp: Path, seconds: float, hit_rounds: int
) -> dict[str, Any]:
    """Both servers up at once, idle but for the one measured: rounds alternate between them.

    On a shared machine the load of other work then falls on both peers alike.
    """
    out: dict[str, Any] = {
        "sources": f"{COLD_SOURCES} per round, {COLD_SOURCE_SIZE[0]}x{COLD_SOURCE_SIZE[1]} JPEG",
        "rounds": len(plan),
        "hit_rounds": hit_rounds,
        "processes": SERVICE_PROCESSES,
        "worker_class": gunicorn_worker_class(),
        # deriv_site leaves DERIVATIVES_WORKERS unset: the executor's default.
        "pool_workers": max(1, min(os.cpu_count() or 1, 4)),
        "specs": {"fileresponse": SPEC, "thumbor": THUMBOR_OPTIONS},
        "thumbor_settings": "file loader, no source storage, file result storage (stores"
        f" unsafe), unsafe URLs, QUALITY {QUALITY}, other settings default",
        "load_average_before": os.getloadavg(),
    }
    if shutil.which("wrk") is None:
        out["skipped"] = "wrk is not installed (apt-get install wrk)"
        return out
    thumbor, reason = ensure_thumbor_venv()
    peers: dict[str, Any] = {}
    if thumbor is None:
        peers["thumbor"] = {"skipped": reason}
    else:
        python = str(Path(thumbor).with_name("python"))
        out["thumbor_versions"] = _venv_versions(python, ("thumbor", "tornado", "Pillow"))
        out["thumbor_python"] = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    services = [_Service(peer, media, tmp) for peer in FILERESPONSE_SERVICES]
    try:
        if thumbor is not None:
            services.append(_Service("thumbor", media, tmp, thumbor))
        for service in services:
            service.wait()
        for number, names in enumerate(plan):
            for service in services[:: 1 if number % 2 == 0 else -1]:
                print(f"    round {number + 1}: {service.peer} ...", flush=True)
                service.measure_round(names)
        paths = {service.peer: service.hit_paths() for service in services}
        for number in range(hit_rounds):
            for service in services[:: 1 if number % 2 == 0 else -1]:
                print(f"    hits {number + 1}: {service.peer} ...", flush=True)
                service.measure_hits(paths[service.peer], seconds)
        psnr = _fidelity(services, media, plan[0]["measured"][:FIDELITY_SAMPLES])
        out["miss_floor"] = miss_floor(media, plan[0]["measured"])
        for service in services:
            peers[service.peer] = service.report(seconds)
            peers[service.peer]["cold"]["psnr_db"] = psnr[service.peer]
    finally:
        for service in services:
            service.stop()
    out["load_average_after"] = os.getloadavg()
    out["peers"] = peers
    return out


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
    peers = report.get("services", {}).get("peers", {})
    thumbor = peers.get("thumbor", {})
    if "cold" in peers.get("fileresponse", {}) and "cold" in thumbor:
        out.update(_vs_thumbor(peers["fileresponse"], thumbor))
        for key in ("miss_vs_thumbor", "hit_vs_thumbor"):
            out["targets_met"][key] = out[key] >= TARGETS[key]
        # For information: the same site through Django's request cycle.
        out["vs_thumbor"] = {
            peer: _vs_thumbor(peers[peer], thumbor)
            for peer in FILERESPONSE_SERVICES
            if "cold" in peers.get(peer, {})
        }
    return out


def _vs_thumbor(ours: dict[str, Any], thumbor: dict[str, Any]) -> dict[str, float]:
    """Rates of one fileresponse server over thumbor's; above 1: fileresponse better."""
    out = {
        "miss_vs_thumbor": ours["cold"]["misses_per_s"] / thumbor["cold"]["misses_per_s"],
        "hit_vs_thumbor": ours["hits"]["requests_per_s"] / thumbor["hits"]["requests_per_s"],
    }
    # Above 1: fileresponse takes less (time, CPU) than thumbor.
    for key, part, figure in (
        ("miss_p50_speedup", "cold", "p50_ms"),
        ("miss_p99_speedup", "cold", "p99_ms"),
        ("miss_cpu_speedup", "cold", "cpu_ms_per_miss"),
        ("hit_cpu_speedup", "hits", "cpu_us_per_request"),
    ):
        out[key] = thumbor[part][figure] / ours[part][figure]
    return out


def markdown(report: dict[str, Any]) -> str:
    r = report["ratios"]
    lines = [
        "# Derivatives: fileresponse vs sorl-thumbnail, easy-thumbnails and thumbor",
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
    lines += ["", *services_markdown(report)]
    return "\n".join(lines) + "\n"


def _busy_note(services: dict[str, Any], cpus: int | None) -> list[str]:
    load = max(services["load_average_before"][0], services["load_average_after"][0])
    if load <= (cpus or 1):
        return []
    return [
        f"The machine was busy with other work (load average up to {load:.1f} on {cpus} CPUs):"
        " the rates then depend on how the scheduler shares the CPUs between the servers and"
        " that work (fileresponse runs more processes: its gunicorn workers and their pool"
        " workers), so the CPU per request compares the peers more fairly than the rates.",
        "",
    ]


def services_markdown(report: dict[str, Any]) -> list[str]:
    services, r = report["services"], report["ratios"]
    processes = services["processes"]
    lines = [
        f"## (d) A thumbnail service: fileresponse under gunicorn vs thumbor, {processes}"
        " processes each",
        "",
    ]
    if "skipped" in services:
        return [*lines, f"Skipped: {services['skipped']}."]
    peers = services["peers"]
    versions = services.get("thumbor_versions", {})
    gunicorn = f"gunicorn, {processes} workers ({services['worker_class']}), site apps/deriv_site"
    pool = f"process pool of {services['pool_workers']} per worker"
    servers = {
        "fileresponse": f"{gunicorn} with the fast path for `/derivatives/`"
        f" (`{FILERESPONSE_SERVICES['fileresponse'][0]}`), {pool}",
        "fileresponse (Django path)": f"the same through Django's URLconf"
        f" (`{FILERESPONSE_SERVICES['fileresponse (Django path)'][0]}`), {pool}",
        "thumbor": f"thumbor {versions.get('thumbor', '?')} `--processes={processes}`"
        f" (tornado {versions.get('tornado', '?')}, Pillow {versions.get('Pillow', '?')},"
        f" Python {services.get('thumbor_python', '?')})",
    }
    lines += [
        "| peer | server | cold misses/s | miss p50 | miss p99 | CPU per miss | hits/s"
        " | CPU per hit | thumbnail bytes | PSNR |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for peer in (*FILERESPONSE_SERVICES, "thumbor"):
        data = peers[peer]
        if "skipped" in data:
            lines.append(f"| {peer} | skipped: {data['skipped']} | | | | | | | | |")
            continue
        cold, hits = data["cold"], data["hits"]
        lines.append(
            f"| {peer} | {servers[peer]} | {cold['misses_per_s']:.1f} | {cold['p50_ms']:.0f} ms"
            f" | {cold['p99_ms']:.0f} ms | {cold['cpu_ms_per_miss']:.1f} ms"
            f" | {hits['requests_per_s']:,.0f} | {hits['cpu_us_per_request']:.0f} µs"
            f" | {cold['thumbnail_bytes_median']:,.0f} | {cold['psnr_db']:.2f} dB |"
        )
    if "miss_vs_thumbor" not in r:
        return lines
    cold = peers["fileresponse"]["cold"]
    hits = peers["fileresponse"]["hits"]
    met = r["targets_met"]
    for peer, versus in r["vs_thumbor"].items():
        bold = "**" if peer == "fileresponse" else ""
        lines.append(
            f"| {peer} vs thumbor (above 1: fileresponse better) |"
            f" | {bold}{versus['miss_vs_thumbor']:.2f}x{bold}"
            f" | {versus['miss_p50_speedup']:.2f}x | {versus['miss_p99_speedup']:.2f}x"
            f" | {versus['miss_cpu_speedup']:.2f}x | {bold}{versus['hit_vs_thumbor']:.2f}x{bold}"
            f" | {versus['hit_cpu_speedup']:.2f}x | | |"
        )
    lines += [
        "",
        f"Cold misses: {services['rounds']} round(s) of {COLD_SOURCES} distinct 300x200"
        f" centre-cropped thumbnails (fileresponse `{services['specs']['fileresponse']}`,"
        f" thumbor `{services['specs']['thumbor']}`, unsafe URLs) of {COLD_SOURCES} distinct"
        f" {COLD_SOURCE_SIZE[0]}x{COLD_SOURCE_SIZE[1]} JPEGs, {cold['concurrency']} clients at"
        f" a time, each round after {COLD_SOURCES} warm-up misses on other sources; misses/s is"
        " the median round, p50/p99 over every measured request. Every answer is checked: a"
        " 300x200 JPEG, one new stored file per miss. thumbor: "
        + services["thumbor_settings"]
        + "; its JPEGs are progressive and optimized (its defaults), fileresponse's baseline."
        f" PSNR: mean over {FIDELITY_SAMPLES} thumbnails against the source decoded whole and"
        " resized with Lanczos (fileresponse decodes a JPEG at no less than twice the box"
        " (1/4 scale here) then resizes with Lanczos; thumbor decodes at no less than the box"
        " (1/8 scale here)). Hits: `wrk` on"
        f" {hits['thumbnails']} stored thumbnails in turn, {hits['connections']} connections,"
        f" {hits['seconds_per_round']:g} s per round, best of {services['hit_rounds']} (the"
        " bytes are those of the miss, and nothing is made meanwhile). Both servers run at"
        " once and take turns, round by round; CPU is that of each server's process tree"
        " (median of rounds), which the load of other work on the machine changes less than"
        " the rates (load average"
        f" {services['load_average_before'][0]:.1f} before, {services['load_average_after'][0]:.1f}"
        " after).",
        "",
        *_busy_note(services, report["machine"]["cpus"]),
        f"Targets: cold misses at least {TARGETS['miss_vs_thumbor']}x thumbor's rate: "
        + ("**met**" if met["miss_vs_thumbor"] else "**not met**")
        + f" ({r['miss_vs_thumbor']:.2f}x); hits at least {TARGETS['hit_vs_thumbor']}x"
        " thumbor's requests/s: "
        + ("**met**" if met["hit_vs_thumbor"] else "**not met**")
        + f" ({r['hit_vs_thumbor']:.2f}x).",
        *_floor_note(services),
    ]
    return lines


def _floor_note(services: dict[str, Any]) -> list[str]:
    """Where fileresponse's CPU per miss goes, and what 1.5x thumbor's rate would take."""
    floor = services.get("miss_floor")
    ours, thumbor = services["peers"]["fileresponse"]["cold"], services["peers"]["thumbor"]["cold"]
    if floor is None:
        return []
    budget = thumbor["cpu_ms_per_miss"] / TARGETS["miss_vs_thumbor"]
    return [
        "",
        f"Where a miss goes: of fileresponse's {ours['cpu_ms_per_miss']:.1f} ms of CPU,"
        f" {ours['pool_cpu_ms_per_miss']:.1f} ms are the processing pool's (the image work) and"
        f" {ours['server_cpu_ms_per_miss']:.1f} ms the server's (HTTP, look-ups, the lock, the"
        " hand-off to the pool, the writes). The image work alone, in one process on the same"
        f" {floor['sources']} sources: decoding at 1/8 scale (thumbor's draft)"
        f" {floor['decode_1_8_ms']:.1f} ms, at 1/4 (fileresponse's) {floor['decode_1_4_ms']:.1f}"
        f" ms, fileresponse's whole engine {floor['engine_ms']:.1f} ms. On CPUs both servers"
        f" saturate, {TARGETS['miss_vs_thumbor']}x thumbor's rate means at most"
        f" {budget:.1f} ms per miss (thumbor's {thumbor['cpu_ms_per_miss']:.1f} ms /"
        f" {TARGETS['miss_vs_thumbor']}), for the decode, the resize, the encode and the"
        f" server together: the decode alone at thumbor's own scale takes"
        f" {floor['decode_1_8_ms'] / budget:.0%} of it (both decode with libjpeg-turbo, which"
        " reads all of a baseline JPEG's entropy-coded data at any scale).",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, short wrk runs")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    rounds, repeat, seconds = (2, 3, 2.0) if args.quick else (3, 7, 5.0)
    # (d): rounds of cold misses, and of wrk on hits (seconds each), taking turns.
    cold_rounds, hit_rounds, hit_seconds = (1, 2, 2.0) if args.quick else (5, 5, 3.0)

    work = HERE / ".work"
    work.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="derivatives-", dir=work))
    try:
        media = tmp / "media"
        derivatives = media / "derivatives"
        print("writing sources ...", flush=True)
        page, big = write_sources(media, repeat)
        plan = write_cold_sources(media, cold_rounds)
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
        print(f"(d) fileresponse under gunicorn vs thumbor, {cold_rounds} round(s) ...", flush=True)
        shutil.rmtree(derivatives, ignore_errors=True)
        service_results = bench_services(plan, media, tmp, hit_seconds, hit_rounds)
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
                    "gunicorn",
                    "uvicorn",
                    "uvicorn-worker",
                )
            },
            "spec": SPEC,
            "quality": QUALITY,
            "page_render": page_results,
            "single_thumbnail": single_results,
            "cache_hits": hit_results,
            "services": service_results,
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
