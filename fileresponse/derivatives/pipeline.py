"""From a verified request to a stored derivative: limits, stat, key, look-up, one run.

No HTTP here: the derivative view (:mod:`fileresponse.derivatives.views`)
and :command:`fileresponse_warm` both call :func:`obtain_derivative`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fileresponse.conf import Config, get_config
from fileresponse.sources.filesystem import io_executor

from .cache import (
    DerivativeStore,
    SourceState,
    StoredDerivative,
    derivative_name,
    family_format,
    get_store,
    is_local,
    stat_source,
    stat_source_now,
)
from .exceptions import (
    DerivativeLimitExceeded,
    ProcessingError,
    ProcessingUnavailable,
    SourceTooLarge,
    UnsupportedFormat,
)
from .executor import get_executor
from .processors import get_engine
from .processors.jobs import ImageJob
from .singleflight import get_single_flight, lock_key
from .spool import spooled_source

if TYPE_CHECKING:
    from django.core.files.storage import Storage

    from .spec import Spec

__all__ = [
    "Obtained",
    "accepted_types",
    "check_limits",
    "choose_format",
    "clear_negative_cache",
    "logger",
    "obtain_derivative",
    "output_choices",
]

logger = logging.getLogger("fileresponse.derivatives")

_NEGATIVE_ENTRIES = 1024


@dataclass(frozen=True, slots=True)
class Obtained:
    """A derivative in the store, stat'ed (its ``stored.source`` is open: serve or close it)."""

    stored: StoredDerivative
    source: SourceState
    output_format: str
    #: Whether this call's single-flight ran the processing.
    generated: bool


async def obtain_derivative(
    source_storage: Storage,
    storage_alias: str,
    source_name: str,
    spec: Spec,
    output_format: str,
    *,
    config: Config | None = None,
    store: DerivativeStore | None = None,
) -> Obtained:
    """The stored derivative of a source by a spec, made now if missing (once).

    ``output_format`` is resolved already (:func:`choose_format`). Raises the
    errors of :mod:`fileresponse.exceptions` (source missing, storage down)
    and of :mod:`fileresponse.derivatives.exceptions` (bad input, limits,
    busy).
    """
    config = config or get_config()
    store = store or get_store()
    check_limits(spec, config)
    engine = get_engine(config.DERIVATIVES_ENGINE).version
    if store.root is not None and is_local(source_storage):
        # Both on this machine: the source's stat and the look-up in one I/O thread hop.
        loop = asyncio.get_running_loop()
        state, name, found = await loop.run_in_executor(
            io_executor(),
            _look_up_now,
            store,
            source_storage,
            storage_alias,
            source_name,
            spec,
            output_format,
            config,
            engine,
        )
    else:
        state = await stat_source(source_storage, storage_alias, source_name)
        _check_source_size(state, config)
        name = derivative_name(
            storage_alias, source_name, state.version, spec, output_format, engine=engine
        )
        _negative_cache.check(name)
        found = await store.find(name)
    if found is not None:
        return Obtained(found, state, output_format, generated=False)

    async def produce() -> None:
        await _produce(store, source_storage, state, spec, output_format, name, config, engine)

    async def is_done() -> bool:
        return await store.exists(name)

    try:
        generated = await get_single_flight(store).run(lock_key(name), is_done, produce)
    except ProcessingError as error:
        _negative_cache.remember(name, error, config.DERIVATIVES_NEGATIVE_TTL)
        raise
    found = await store.find(name)
    if found is None:
        raise ProcessingUnavailable("the derivative was not stored; try again")
    return Obtained(found, state, output_format, generated=generated)


def _look_up_now(
    store: DerivativeStore,
    source_storage: Storage,
    storage_alias: str,
    source_name: str,
    spec: Spec,
    output_format: str,
    config: Config,
    engine: str,
) -> tuple[SourceState, str, StoredDerivative | None]:
    state = stat_source_now(source_storage, storage_alias, source_name)
    _check_source_size(state, config)
    name = derivative_name(
        storage_alias, source_name, state.version, spec, output_format, engine=engine
    )
    _negative_cache.check(name)
    return state, name, store.find_now(name)


def _check_source_size(state: SourceState, config: Config) -> None:
    if state.size > config.DERIVATIVES_MAX_SOURCE_BYTES:
        raise SourceTooLarge(
            f"source too large: {state.size} bytes (limit {config.DERIVATIVES_MAX_SOURCE_BYTES})"
        )


async def _produce(
    store: DerivativeStore,
    source_storage: Storage,
    state: SourceState,
    spec: Spec,
    output_format: str,
    name: str,
    config: Config,
    engine: str,
) -> None:
    """One processing run: read, process in the executor, store atomically, log.

    A source with no local path is copied first, in bounded memory (see
    :mod:`~fileresponse.derivatives.spool`); the copy is gone once the job
    ends. ``engine`` is the engine's version, the first segment of ``name``.
    """
    started = time.perf_counter()

    def job(
        path: str | None, data: bytes | None = None, identity: tuple[int, int] | None = None
    ) -> ImageJob:
        return ImageJob(
            spec=spec,
            output_format=output_format,
            max_source_pixels=config.DERIVATIVES_MAX_SOURCE_PIXELS,
            max_source_bytes=config.DERIVATIVES_MAX_SOURCE_BYTES,
            path=path,
            data=data,
            engine=config.DERIVATIVES_ENGINE,
            identity=identity,
        )

    if state.path is not None:
        result = await get_executor().run(job(state.path, identity=state.identity))
    else:
        max_bytes = config.DERIVATIVES_MAX_SOURCE_BYTES
        async with spooled_source(source_storage, state, max_bytes) as copy:
            result = await get_executor().run(job(copy.path, copy.data))
    await store.write_manifest(state, engine=engine)
    await store.save(name, result.data)
    elapsed = time.perf_counter() - started
    logger.info(
        "generated %s in %.1f ms (%dx%d %s, %d bytes)",
        name,
        elapsed * 1000,
        result.width,
        result.height,
        result.format,
        len(result.data),
        extra={"derivative": name, "duration": elapsed},
    )


# ---------------------------------------------------------------- decisions


def check_limits(spec: Spec, config: Config) -> None:
    """``400`` for a box beyond ``DERIVATIVES_MAX_WIDTH``/``_HEIGHT``, before any work."""
    if spec.width is not None and spec.width > config.DERIVATIVES_MAX_WIDTH:
        raise DerivativeLimitExceeded(
            f"width {spec.width} over the limit {config.DERIVATIVES_MAX_WIDTH}"
        )
    if spec.height is not None and spec.height > config.DERIVATIVES_MAX_HEIGHT:
        raise DerivativeLimitExceeded(
            f"height {spec.height} over the limit {config.DERIVATIVES_MAX_HEIGHT}"
        )


def choose_format(
    spec: Spec, source_name: str, accept: str | None, config: Config | None = None
) -> tuple[str, bool]:
    """``(output format, varies by Accept)`` for a spec and a request's ``Accept`` header.

    ``auto`` takes the first of ``DERIVATIVES_AUTO_FORMATS`` that the header
    names explicitly (``image/avif``, ``image/webp``; ``image/*`` does not
    count, as browsers send it for formats they cannot show) and the engine
    (``DERIVATIVES_ENGINE``) writes, else the source's family (JPEG, or PNG).
    No format: the source's family. Raises :class:`UnsupportedFormat` for a
    format the engine lacks.
    """
    config = config or get_config()
    supported = output_formats(config.DERIVATIVES_ENGINE)
    if spec.format == "auto":
        preferences = config.DERIVATIVES_AUTO_FORMATS
        accepted = accepted_types(accept or "")
        for candidate in preferences:
            if candidate in supported and f"image/{candidate}" in accepted:
                return candidate, True
        return _fallback(source_name), True
    output_format = spec.format or family_format(source_name)
    if output_format not in supported:
        raise UnsupportedFormat(f"unsupported format: {output_format}")
    return output_format, False


def output_choices(spec: Spec, source_name: str, config: Config | None = None) -> list[str]:
    """Every output format a request may get for this spec (``auto`` has several)."""
    config = config or get_config()
    if spec.format != "auto":
        return [choose_format(spec, source_name, None, config)[0]]
    supported = output_formats(config.DERIVATIVES_ENGINE)
    preferences = config.DERIVATIVES_AUTO_FORMATS
    choices = [candidate for candidate in preferences if candidate in supported]
    fallback = _fallback(source_name)
    return choices + ([fallback] if fallback not in choices else [])


def output_formats(engine: str) -> frozenset[str]:
    """The formats the engine called ``engine`` writes here."""
    return get_engine(engine).output_formats()


def _fallback(source_name: str) -> str:
    return "jpeg" if family_format(source_name) == "jpeg" else "png"


def accepted_types(accept: str) -> frozenset[str]:
    """The media types an ``Accept`` header names with a non-zero quality (RFC 9110 12.5.1)."""
    types: set[str] = set()
    for item in accept.split(","):
        media_type, *parameters = (part.strip() for part in item.split(";"))
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media_type and quality > 0:
            types.add(media_type.lower())
    return frozenset(types)


# ---------------------------------------------------------------- negative cache


class _NegativeCache:
    """Failures remembered for a short while, per process, by derivative name.

    The name holds the source's version, so a fixed source is tried again at
    once; nothing is written to the derivative storage for a failure. Only
    the error's class and message are kept: the error itself holds its
    traceback, whose frames hold the job and whatever the run had read.
    """

    def __init__(self, size: int = _NEGATIVE_ENTRIES) -> None:
        self._size = size
        self._entries: OrderedDict[str, tuple[float, type[ProcessingError], str]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, name: str, error: ProcessingError, ttl: int | None) -> None:
        if not ttl:
            return
        with self._lock:
            self._entries[name] = (time.monotonic() + ttl, type(error), str(error))
            self._entries.move_to_end(name)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def check(self, name: str) -> None:
        """Raise the remembered failure of ``name``, if it has not expired."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                return
            if entry[0] < time.monotonic():
                del self._entries[name]
                return
        _, error_class, message = entry
        raise error_class(message)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_negative_cache = _NegativeCache()


def clear_negative_cache() -> None:
    """Forget every remembered failure (tests, or after changing limits)."""
    _negative_cache.clear()
