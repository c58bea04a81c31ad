"""Keeping the derivative storage tidy and warm: the logic of two management commands.

- :func:`purge` (``manage.py fileresponse_purge``) removes the derivatives of
  sources that are gone or changed (their directory's version is not the
  source's current one), those of other engines and older engine versions
  (anything but ``DERIVATIVES_ENGINE``'s current one), orphan directories
  (no ``source.json``), temporary files older than ``temp_age`` left by
  crashed writes, and expired lease objects.
- :func:`warm` (``manage.py fileresponse_warm``) makes the derivatives of
  sources x specs ahead of the first request, through the same single-flight
  and executor as the view (``auto`` specs get every format they may serve).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import os
import posixpath
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fileresponse.conf import get_config
from fileresponse.exceptions import FileResponseError, SourceNotFound
from fileresponse.sources.storage import storage_source

from .keys import MANIFEST_NAME, TEMP_SUFFIX, safe_version, version_of
from .pipeline import obtain_derivative
from .processors import Output, processor_for, processors
from .store import DerivativeStore, get_store

if TYPE_CHECKING:
    from django.core.files.storage import Storage

    from .executor import JobExecutor
    from .remote import RemoteJobExecutor
    from .spec import Spec

__all__ = ["PurgeReport", "WarmReport", "expand_sources", "purge", "warm"]

_LOCKS = ".locks"
_GLOB_CHARACTERS = frozenset("*?[")
#: Top directories of other processor versions (``pillow-1``, ``vips-1``): those
#: not in use now are removed; nothing else is touched.
_ENGINE_DIRECTORY = re.compile(r"[a-z]+-[0-9]+")


# ---------------------------------------------------------------- purge


@dataclass
class PurgeReport:
    removed: int = 0
    """Derivative files removed (manifests included)."""
    sources_gone: int = 0
    sources_changed: int = 0
    sources_kept: int = 0
    temporary: int = 0
    leases: int = 0
    errors: list[str] = field(default_factory=list)


def purge(
    store: DerivativeStore | None = None,
    *,
    dry_run: bool = False,
    temp_age: float = 3600.0,
    log: Callable[[str], None] | None = None,
) -> PurgeReport:
    """Remove what no request can be served from any more (see the module's docs)."""
    store = store or get_store()
    config = get_config()
    versions = sorted({processor.version(config) for processor in processors()})
    report = PurgeReport()
    say = log or (lambda message: None)
    directories, _ = store.listdir("")
    for directory in directories:
        if directory == _LOCKS:
            _purge_leases(store, report, dry_run, say)
        elif directory not in versions and _ENGINE_DIRECTORY.fullmatch(directory):
            say(f"other engine {directory}/")
            report.removed += _remove_tree(store, directory, dry_run)
    for version in versions:
        for prefix in _source_prefixes(store, version):
            _purge_source(store, prefix, report, dry_run, say)
    if store.root is not None:
        report.temporary += _purge_temporary(store.root, temp_age, dry_run, say)
        if not dry_run:
            _remove_empty_directories(store.root)
    return report


def _source_prefixes(store: DerivativeStore, engine: str) -> Iterator[str]:
    aliases, _ = store.listdir(engine)
    for alias in aliases:
        buckets, _ = store.listdir(f"{engine}/{alias}")
        for bucket in buckets:
            hashes, _ = store.listdir(f"{engine}/{alias}/{bucket}")
            for digest in hashes:
                yield f"{engine}/{alias}/{bucket}/{digest}"


def _purge_source(
    store: DerivativeStore,
    prefix: str,
    report: PurgeReport,
    dry_run: bool,
    say: Callable[[str], None],
) -> None:
    versions, files = store.listdir(prefix)
    manifest = _read_manifest(store, prefix) if MANIFEST_NAME in files else None
    if manifest is None:
        say(f"orphan {prefix}/")
        report.sources_gone += 1
        report.removed += _remove_tree(store, prefix, dry_run)
        return
    alias, name = manifest
    try:
        current = _current_version(alias, name)
    except SourceNotFound:
        current = None
    except FileResponseError as error:
        report.errors.append(f"{alias}:{name}: {error}")
        report.sources_kept += 1
        return
    if current is None:
        say(f"gone {alias}:{name}")
        report.sources_gone += 1
        report.removed += _remove_tree(store, prefix, dry_run)
        return
    stale = [version for version in versions if version != current]
    if stale:
        say(f"changed {alias}:{name} ({len(stale)} old version(s))")
        report.sources_changed += 1
        for version in stale:
            report.removed += _remove_tree(store, f"{prefix}/{version}", dry_run)
    else:
        report.sources_kept += 1


def _read_manifest(store: DerivativeStore, prefix: str) -> tuple[str, str] | None:
    try:
        record = json.loads(store.read(f"{prefix}/{MANIFEST_NAME}"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    alias, name = record.get("storage"), record.get("name")
    if isinstance(alias, str) and isinstance(name, str):
        return alias, name
    return None


def _current_version(alias: str, name: str) -> str:
    """The path segment of the source's current version; SourceNotFound when it is gone."""
    from django.core.files.storage import InvalidStorageError, storages

    if alias not in get_config().DERIVATIVES_SOURCE_STORAGES:
        raise SourceNotFound(f"storage {alias!r} is no derivative source now")
    try:
        storage = storages[alias]
    except InvalidStorageError as error:
        raise SourceNotFound(f"no storage {alias!r}") from error
    source = storage_source(storage, name)
    try:
        return safe_version(version_of(source.stat()))
    finally:
        source.close()


def _remove_tree(store: DerivativeStore, path: str, dry_run: bool) -> int:
    directories, files = store.listdir(path)
    removed = 0
    for directory in directories:
        removed += _remove_tree(store, f"{path}/{directory}", dry_run)
    for name in files:
        if not dry_run:
            store.delete(f"{path}/{name}")
        removed += 1
    return removed


def _purge_leases(
    store: DerivativeStore, report: PurgeReport, dry_run: bool, say: Callable[[str], None]
) -> None:
    """Expired lease objects (object storages; lock files of a local store stay)."""
    _, files = store.listdir(_LOCKS)
    now = time.time()
    for name in files:
        if not name.endswith(".lease"):
            continue
        try:
            expires = float(json.loads(store.read(f"{_LOCKS}/{name}")).get("expires", 0))
        except (OSError, ValueError, AttributeError):
            expires = 0.0
        if expires < now:
            say(f"expired lease {name}")
            if not dry_run:
                store.delete(f"{_LOCKS}/{name}")
            report.leases += 1


def _purge_temporary(root: str, temp_age: float, dry_run: bool, say: Callable[[str], None]) -> int:
    removed = 0
    limit = time.time() - temp_age
    for directory, subdirectories, files in os.walk(root):
        if _LOCKS in subdirectories and directory == root:
            subdirectories.remove(_LOCKS)
        for name in files:
            if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
                continue
            path = os.path.join(directory, name)
            try:
                if os.stat(path).st_mtime >= limit:
                    continue
                say(f"temporary {os.path.relpath(path, root)}")
                if not dry_run:
                    os.unlink(path)
            except FileNotFoundError:
                continue
            removed += 1
    return removed


def _remove_empty_directories(root: str) -> None:
    for directory, _, _ in os.walk(root, topdown=False):
        if directory != root and os.path.basename(directory) != _LOCKS:
            with contextlib.suppress(OSError):  # not empty, or made again meanwhile
                os.rmdir(directory)


# ---------------------------------------------------------------- warm


@dataclass
class WarmReport:
    generated: int = 0
    present: int = 0
    failed: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.generated + self.present + len(self.failed)


def expand_sources(
    storage: Storage, patterns: Iterable[str], *, exclude: str | None = None
) -> list[str]:
    """Source names: each pattern is a name, or a glob (``*``, ``?``, ``[...]``;
    ``*`` crosses ``/``) matched against the files of ``storage``.

    ``exclude`` is a directory of the storage to leave out (the derivative
    root when it lies inside the source storage).
    """
    names: list[str] = []
    for pattern in patterns:
        if not _GLOB_CHARACTERS & set(pattern):
            names.append(pattern)
            continue
        static = pattern
        while static and _GLOB_CHARACTERS & set(static):
            static = posixpath.dirname(static)
        for name in _walk(storage, static, exclude):
            if fnmatch.fnmatchcase(name, pattern):
                names.append(name)
    return list(dict.fromkeys(names))


def _walk(storage: Storage, directory: str, exclude: str | None) -> Iterator[str]:
    try:
        directories, files = storage.listdir(directory or "")
    except FileNotFoundError:
        return
    for name in sorted(files):
        yield posixpath.join(directory, name) if directory else name
    for sub in sorted(directories):
        path = posixpath.join(directory, sub) if directory else sub
        if sub.startswith(".") or path == exclude:
            continue
        yield from _walk(storage, path, exclude)


async def warm(
    storage: Storage,
    storage_alias: str,
    names: Iterable[str],
    specs: Iterable[Spec],
    *,
    concurrency: int = 2,
    progress: Callable[[int, int, str], Any] | None = None,
    executor: JobExecutor | RemoteJobExecutor | None = None,
) -> WarmReport:
    """Make the derivatives of ``names`` x ``specs`` (every format of ``auto``).

    Misses run in ``executor`` (default: ``DERIVATIVES_EXECUTOR``'s; see
    :func:`~.pipeline.obtain_derivative`).
    """
    config = get_config()
    store = get_store()
    jobs = [
        (name, spec, output)
        for name in names
        for spec in specs
        for output in processor_for(name, spec).output_choices(spec, name, config)
    ]
    report = WarmReport()
    semaphore = asyncio.Semaphore(max(1, concurrency))
    done = 0

    async def one(name: str, spec: Spec, output: Output) -> None:
        nonlocal done
        async with semaphore:
            try:
                obtained = await obtain_derivative(
                    storage,
                    storage_alias,
                    name,
                    spec,
                    output=output,
                    config=config,
                    store=store,
                    executor=executor,
                )
            except FileResponseError as error:
                report.failed.append(f"{name} [{spec}] {output.format}: {error}")
            else:
                obtained.stored.source.close()
                if obtained.generated:
                    report.generated += 1
                else:
                    report.present += 1
            done += 1
            if progress is not None:
                progress(done, len(jobs), name)

    await asyncio.gather(*(one(*job) for job in jobs))
    return report
