"""From a verified request to a stored derivative, in order: resolve, look up, produce once.

No HTTP here: the derivative view (:mod:`fileresponse.derivatives.views`)
calls :func:`obtain_or_stream` (a processor that streams is followed live,
:mod:`.streaming`), :command:`fileresponse_warm` :func:`obtain_derivative`. Each
step lives in the module that owns it: the processor (:mod:`.processors`),
the source's stat (:mod:`.originals`), the name (:mod:`.keys`), the store
(:mod:`.store`), single-flight (:mod:`.singleflight`) and the executor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fileresponse.conf import Config, get_config
from fileresponse.threads import in_thread

from .diagnostics import Provenance, log_generated
from .exceptions import KindUnavailable, ProcessingError, ProcessingUnavailable
from .executor import JobExecutor, get_executor
from .keys import derivative_name, lock_key
from .originals import SourceState, astat_original, stat_original
from .processors import JobInput, Output, Processor, check_available, processor_for
from .remote import DerivativeTask, RemoteJobExecutor
from .singleflight import get_single_flight
from .spool import spooled_source
from .store import DerivativeStore, StoredDerivative, get_store, local_location
from .streaming import StreamRequest, await_stream, open_stream

if TYPE_CHECKING:
    from django.core.files.storage import Storage

    from .spec import Spec

__all__ = [
    "Obtained",
    "Streaming",
    "clear_negative_cache",
    "logger",
    "obtain_derivative",
    "obtain_or_stream",
]

logger = logging.getLogger("fileresponse.derivatives")


@dataclass(frozen=True, slots=True)
class Obtained:
    """A derivative in the store, stat'ed (its ``stored.source`` is open: serve or close it)."""

    stored: StoredDerivative
    source: SourceState
    output: Output
    #: Whether the output depends on the request's ``Accept`` header (``Vary: Accept``).
    varies: bool
    #: Whether this call's single-flight ran the processing.
    generated: bool
    #: How this call obtained it (a hit, its own run, another's), timed.
    provenance: Provenance


@dataclass(frozen=True, slots=True)
class Streaming:
    """A derivative being made, its bytes followed as they come (see :mod:`.streaming`)."""

    #: The body: the output so far, then live; it raises if the run fails.
    body: AsyncIterator[bytes]
    source: SourceState
    output: Output
    varies: bool
    #: A miss (this call started the run) or collapsed (it joined one), to the first byte.
    provenance: Provenance


@dataclass(frozen=True, slots=True)
class _Resolved:
    """Steps 1 and 2 of a request: its processor and output, the source, the name, a hit."""

    processor: Processor
    output: Output
    varies: bool
    engine: str
    state: SourceState
    name: str
    found: StoredDerivative | None
    #: Seconds to resolve and look up.
    look_up: float


async def obtain_derivative(
    source_storage: Storage,
    storage_alias: str,
    source_name: str,
    spec: Spec,
    *,
    accept: str | None = None,
    output: Output | str | None = None,
    config: Config | None = None,
    store: DerivativeStore | None = None,
    executor: JobExecutor | RemoteJobExecutor | None = None,
) -> Obtained:
    """The stored derivative of a source by a spec, made now if missing (once).

    The output is chosen by the processor for ``accept`` (a request's
    ``Accept`` header), unless ``output`` (or its format's name) is given. A
    processor that streams is awaited to the end of its run. A miss runs in
    ``executor`` (default: ``DERIVATIVES_EXECUTOR``'s): a job of a task queue's
    worker passes a local one, never to wait for tasks queued behind itself.
    Raises the errors of :mod:`fileresponse.exceptions` (source missing,
    storage down) and of :mod:`fileresponse.derivatives.exceptions` (bad
    input, limits, busy).
    """
    obtained = await _obtain(
        source_storage,
        storage_alias,
        source_name,
        spec,
        accept,
        output,
        config,
        store,
        executor or get_executor(),
        False,
    )
    assert isinstance(obtained, Obtained)
    return obtained


async def obtain_or_stream(
    source_storage: Storage,
    storage_alias: str,
    source_name: str,
    spec: Spec,
    *,
    accept: str | None = None,
    config: Config | None = None,
    store: DerivativeStore | None = None,
) -> Obtained | Streaming:
    """As :func:`obtain_derivative`, but a miss of a processor that streams is followed live.

    :class:`Streaming` when this request follows the run of this process
    (started now, or under way); :class:`Obtained` for a stored derivative.
    """
    return await _obtain(
        source_storage,
        storage_alias,
        source_name,
        spec,
        accept,
        None,
        config,
        store,
        get_executor(),
        True,
    )


async def _obtain(
    source_storage: Storage,
    storage_alias: str,
    source_name: str,
    spec: Spec,
    accept: str | None,
    output: Output | str | None,
    config: Config | None,
    store: DerivativeStore | None,
    executor: JobExecutor | RemoteJobExecutor,
    follow: bool,
) -> Obtained | Streaming:
    """The route of both: resolve and look up, then produce once (``follow``: live)."""
    started = time.perf_counter()
    config = config or get_config()
    store = store or get_store()
    # 1. Resolve: the processor of this kind of source (or spec), enabled and installed
    # here, its limits, the output.
    processor = processor_for(source_name, spec)
    check_available(processor, config)
    processor.check(spec, config)
    varies = False
    if output is None:
        output, varies = processor.choose_output(spec, source_name, accept, config)
    elif isinstance(output, str):
        output = processor.output(output, config)
    # 2. Look up: stat the source, name the derivative, find it (on the event loop when
    # both are files of this machine in the kernel's caches, else in one I/O thread hop).
    engine = processor.version(config)
    look_up = (storage_alias, source_name, spec, output, config, engine)
    if store.root is not None and local_location(source_storage) is not None:
        state, name, found = await _alook_up(store, source_storage, *look_up)
    else:
        state, name, found = await in_thread(_look_up, store, source_storage, *look_up)
    missed = time.perf_counter()
    resolved = _Resolved(
        processor, output, varies, engine, state, name, found, look_up=missed - started
    )
    if resolved.found is not None:
        return _obtained(resolved, resolved.found, generated=False, outcome="hit", since=missed)
    # 3. Produce once (across processes and machines), then find what was stored; a
    # remote executor's workers make streaming kinds too, to their end (:mod:`.remote`).
    if not resolved.processor.streams(spec) or isinstance(executor, RemoteJobExecutor):
        generated, collapsed = await _produce_once(
            store, source_storage, spec, resolved, config, executor
        )
        outcome = _miss(collapsed)
        return await _stored(store, resolved, generated=generated, outcome=outcome, since=missed)
    request = _stream_request(store, source_storage, spec, resolved, config)
    if not follow:
        generated = await await_stream(request)
        outcome = _miss(collapsed=not generated)
        return await _stored(store, resolved, generated=generated, outcome=outcome, since=missed)
    opened = await open_stream(request)
    if opened.body is None:  # stored meanwhile, here or by another process
        generated = not opened.collapsed
        outcome = _miss(opened.collapsed)
        return await _stored(store, resolved, generated=generated, outcome=outcome, since=missed)
    provenance = Provenance(
        _miss(opened.collapsed),
        processor.kind,
        resolved.look_up,
        production=time.perf_counter() - missed,
        streamed=True,
    )
    return Streaming(opened.body, resolved.state, resolved.output, resolved.varies, provenance)


async def _produce_once(
    store: DerivativeStore,
    source_storage: Storage,
    spec: Spec,
    resolved: _Resolved,
    config: Config,
    executor: JobExecutor | RemoteJobExecutor,
) -> tuple[bool, bool]:
    """Run the processing once across processes and machines.

    Whether this call's flight ran it, and whether this call was collapsed: its
    flight was another request's (of this process), or found the derivative
    stored by another process's run.
    """
    name = resolved.name
    ran_here = False

    async def produce() -> None:  # only the first request's, of those that share a flight
        nonlocal ran_here
        ran_here = True
        if isinstance(executor, RemoteJobExecutor):
            task = DerivativeTask.signed(
                resolved.state.storage_alias,
                resolved.state.name,
                spec.canonical(),
                resolved.output.format,
                name,
            )
            await executor.produce(task, store)
            return
        await _produce(
            executor,
            store,
            resolved.processor,
            source_storage,
            resolved.state,
            spec,
            resolved.output,
            name,
            config,
            resolved.engine,
        )

    async def is_done() -> bool:
        return await store.aexists(name)

    try:
        generated = await get_single_flight(store).run(lock_key(name), is_done, produce)
    except ProcessingError as error:
        _negative_cache.remember(name, error, config.DERIVATIVES_NEGATIVE_TTL)
        raise
    return generated, not ran_here


def _miss(collapsed: bool) -> Literal["miss", "collapsed"]:
    return "collapsed" if collapsed else "miss"


def _stream_request(
    store: DerivativeStore,
    source_storage: Storage,
    spec: Spec,
    resolved: _Resolved,
    config: Config,
) -> StreamRequest:
    def remember(error: ProcessingError) -> None:
        _negative_cache.remember(resolved.name, error, config.DERIVATIVES_NEGATIVE_TTL)

    return StreamRequest(
        store=store,
        processor=resolved.processor,
        source_storage=source_storage,
        state=resolved.state,
        spec=spec,
        output=resolved.output,
        name=resolved.name,
        engine=resolved.engine,
        config=config,
        on_failure=remember,
    )


async def _stored(
    store: DerivativeStore,
    resolved: _Resolved,
    *,
    generated: bool,
    outcome: Literal["miss", "collapsed"],
    since: float,
) -> Obtained:
    found = await store.afind(resolved.name)
    if found is None:
        raise ProcessingUnavailable("the derivative was not stored; try again")
    return _obtained(resolved, found, generated=generated, outcome=outcome, since=since)


def _obtained(
    resolved: _Resolved,
    found: StoredDerivative,
    *,
    generated: bool,
    outcome: Literal["hit", "miss", "collapsed"],
    since: float,
) -> Obtained:
    """The stored derivative, with its provenance (``since``: the miss, ``perf_counter()``)."""
    production = 0.0 if outcome == "hit" else time.perf_counter() - since
    provenance = Provenance(outcome, resolved.processor.kind, resolved.look_up, production)
    return Obtained(found, resolved.state, resolved.output, resolved.varies, generated, provenance)


def _look_up(
    store: DerivativeStore,
    source_storage: Storage,
    storage_alias: str,
    source_name: str,
    spec: Spec,
    output: Output,
    config: Config,
    engine: str,
) -> tuple[SourceState, str, StoredDerivative | None]:
    """The source's state, the derivative's name and the stored derivative (blocking)."""
    state = stat_original(
        source_storage, storage_alias, source_name, config.DERIVATIVES_MAX_SOURCE_BYTES
    )
    name = derivative_name(
        storage_alias, source_name, state.version, spec, output.extension, engine=engine
    )
    _negative_cache.check(name)
    return state, name, store.find(name)


async def _alook_up(
    store: DerivativeStore,
    source_storage: Storage,
    storage_alias: str,
    source_name: str,
    spec: Spec,
    output: Output,
    config: Config,
    engine: str,
) -> tuple[SourceState, str, StoredDerivative | None]:
    """:func:`_look_up`, each stat on the event loop when its names are in the kernel's caches."""
    state = await astat_original(
        source_storage, storage_alias, source_name, config.DERIVATIVES_MAX_SOURCE_BYTES
    )
    name = derivative_name(
        storage_alias, source_name, state.version, spec, output.extension, engine=engine
    )
    _negative_cache.check(name)
    return state, name, await store.afind(name)


async def _produce(
    executor: JobExecutor,
    store: DerivativeStore,
    processor: Processor,
    source_storage: Storage,
    state: SourceState,
    spec: Spec,
    output: Output,
    name: str,
    config: Config,
    engine: str,
) -> None:
    """One processing run: the job in the executor, the result stored atomically, a log line.

    A source with no local path is copied first, in bounded memory (see
    :mod:`~fileresponse.derivatives.spool`); the copy is gone once the job ends.
    """
    started = time.perf_counter()
    if state.path is not None:
        job = processor.job(spec, output, JobInput(state.path, identity=state.identity), config)
        result = await executor.run(job)
    else:
        max_bytes = config.DERIVATIVES_MAX_SOURCE_BYTES
        async with spooled_source(source_storage, state, max_bytes) as copy:
            job = processor.job(spec, output, JobInput(copy.path, copy.data), config)
            result = await executor.run(job)
    await in_thread(_store_result, store, state, engine, name, result.data)
    seconds = time.perf_counter() - started
    log_generated(name, state, spec, seconds=seconds, size=len(result.data), summary=result.summary)


def _store_result(
    store: DerivativeStore, state: SourceState, engine: str, name: str, data: bytes
) -> None:
    """The source's manifest (if new), then the derivative, atomically (blocking)."""
    store.write_manifest(state.storage_alias, state.name, engine)
    store.save(name, data)


# ---------------------------------------------------------------- negative cache


class _NegativeCache:
    """Failures remembered for a short while, per process, by derivative name.

    The name holds the source's version, so a fixed source is tried again at
    once; nothing is written to the derivative storage for a failure. Only
    the error's class and message are kept: the error itself holds its
    traceback, whose frames hold the job and whatever the run had read.
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._entries: OrderedDict[str, tuple[float, type[ProcessingError], str]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, name: str, error: ProcessingError, ttl: int | None) -> None:
        if not ttl or isinstance(error, KindUnavailable):  # about the site, not the source
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
