"""``manage.py fileresponse_warm``: make derivatives before anyone asks for them.

::

    $ python manage.py fileresponse_warm "photos/*.jpg" --spec "300x200 fill webp" \
        --spec "600x400 fill webp"
    [##########################----] 87/100 photos/cat.jpg

Sources are names in the source storage (``--storage``, default
``"default"``) or glob patterns (``*`` crosses ``/``) matched against its
files. Each source x spec goes through the same single-flight, executor and
atomic writes as the derivative view; ``auto`` specs are made in every format
they may be served in. Exits with status 1 when some derivatives failed.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from fileresponse.derivatives.executor import get_executor, reset_executor
from fileresponse.derivatives.maintenance import WarmReport, expand_sources, warm
from fileresponse.derivatives.spec import InvalidSpec, parse_spec


class ProgressBar:
    """``[#####-----] done/total label`` on one line of a terminal; plain lines otherwise."""

    def __init__(self, stream: OutputWrapper, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.interactive = stream.isatty()
        self._last_decile = -1

    def __call__(self, done: int, total: int, label: str) -> None:
        filled = self.width * done // max(total, 1)
        line = f"[{'#' * filled}{'-' * (self.width - filled)}] {done}/{total} {label}"
        if self.interactive:
            self.stream.write("\r\x1b[K" + line[:200], ending="\n" if done == total else "")
            self.stream.flush()
            return
        decile = 10 * done // max(total, 1)
        if decile != self._last_decile or done == total:
            self._last_decile = decile
            self.stream.write(line)


class Command(BaseCommand):
    help = "Make the derivatives of SOURCES x --spec ahead of the first request."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("sources", nargs="+", help="source names or glob patterns")
        parser.add_argument(
            "--spec",
            action="append",
            required=True,
            dest="specs",
            help='a spec, e.g. "300x200 fill webp" (repeat for several)',
        )
        parser.add_argument(
            "--storage", default="default", help="alias of the source storage (default: default)"
        )
        parser.add_argument(
            "--jobs",
            type=int,
            default=None,
            help="derivatives made at once (default: the executor's workers)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        from django.core.files.storage import storages

        from fileresponse.conf import get_config
        from fileresponse.derivatives.store import get_store

        try:
            specs = [parse_spec(text) for text in options["specs"]]
        except InvalidSpec as error:
            raise CommandError(f"bad spec: {error}") from error
        alias = options["storage"]
        if alias not in get_config().DERIVATIVES_SOURCE_STORAGES:
            raise CommandError(f"storage {alias!r} is not in DERIVATIVES_SOURCE_STORAGES")
        storage = storages[alias]
        names = expand_sources(storage, options["sources"], exclude=_excluded(storage, get_store()))
        if not names:
            raise CommandError("no source matches")
        jobs = options["jobs"] or getattr(get_executor(), "max_workers", 2)
        progress = None if options["no_progress"] else ProgressBar(self.stderr)
        try:
            report = _run(warm(storage, alias, names, specs, concurrency=jobs, progress=progress))
        finally:
            reset_executor()
        for failure in report.failed:
            self.stderr.write(f"failed: {failure}")
        self.stdout.write(
            f"{report.generated} generated, {report.present} already there, "
            f"{len(report.failed)} failed ({len(names)} source(s) x {len(specs)} spec(s))"
        )
        if report.failed:
            sys.exit(1)


def _run(coroutine: Coroutine[Any, Any, WarmReport]) -> WarmReport:
    """Run ``coroutine`` to the end, in a thread of its own when a loop runs here (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def _excluded(storage: Any, store: Any) -> str | None:
    """The derivative root, as a directory of the source storage, when it lies inside it."""
    import os

    location = getattr(storage, "location", None)
    if store.root is None or not isinstance(location, str):
        return None
    relative = os.path.relpath(store.root, location)
    return None if relative.startswith(os.pardir) else relative.replace(os.sep, "/")
