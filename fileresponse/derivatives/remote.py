"""Processing on a task queue: the web process enqueues a derivative, a worker makes it.

A miss enqueues one task under single-flight's locks (one for a herd, across
processes and machines), its arguments names and a signed spec (JSON strings).
The worker (:func:`make_derivative`) resolves it again with the same processors,
writes it atomically to the derivative storage, and a task record
(``.tasks/<key>.json``: state, pid, host) says who made it or why it failed. The
web process awaits it without a thread (Redis pub/sub at ``DERIVATIVES_REDIS_URL``,
else the store polled with backoff) for ``DERIVATIVES_TIMEOUT`` (then ``503``), or
answers ``503`` with ``Retry-After`` at once (``DERIVATIVES_REMOTE_WAIT = False``).
Streaming processors (transcodes, commands) run in the worker too, to their end:
nothing is streamed while it is made. Executors: :mod:`.celery_executor`,
:mod:`.tasks_executor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from django.core.files.base import ContentFile
from django.utils.crypto import constant_time_compare, salted_hmac

from fileresponse.conf import Config, get_config
from fileresponse.exceptions import FileResponseError, SourceUnavailable
from fileresponse.threads import in_thread

from . import exceptions
from .diagnostics import log_generated
from .exceptions import ProcessingError, ProcessingUnavailable, SourceChanged
from .keys import derivative_name, lock_key
from .originals import SourceState, stat_original
from .processors import JobInput, check_available, processor_for, run_job
from .processors.base import open_checked
from .processors.command import run_to_end
from .signing import InvalidSignature
from .spec import parse_spec
from .store import get_store

if TYPE_CHECKING:
    from django.core.files.storage import Storage

    from .processors import Output, Processor
    from .spec import Spec
    from .store import DerivativeStore

__all__ = [
    "CHANNEL",
    "RECORDS",
    "DerivativeTask",
    "RemoteExecutor",
    "RemoteJobExecutor",
    "make_derivative",
    "read_record",
]

logger = logging.getLogger("fileresponse.derivatives")

#: The directory of the task records in the derivative storage.
RECORDS = ".tasks"
#: The Redis channel (plus the derivative's key) a worker publishes to when done.
CHANNEL = "fileresponse:derivative-done:"
_SALT = "fileresponse.derivatives.task"
_FIRST_PAUSE = 0.02
_LONGEST_PAUSE = 0.5
#: The longest wait for a notification before the store is looked at again.
_NOTIFIED_PAUSE = 1.0
_COPY_CHUNK = 1024 * 1024
_Value = TypeVar("_Value")


@dataclass(frozen=True, slots=True)
class DerivativeTask:
    """What a worker needs to make a derivative: names and a signed spec, all strings."""

    storage: str
    source: str
    #: The spec's canonical text (``Spec.canonical()``).
    spec: str
    #: The output format the web process chose (``auto`` is resolved there).
    format: str
    #: The derivative's name: the worker makes this one or none (the source changed).
    name: str
    signature: str = ""

    def _message(self) -> str:
        return "\n".join((self.storage, self.source, self.spec, self.format, self.name))

    @classmethod
    def signed(
        cls, storage: str, source: str, spec: str, output_format: str, name: str
    ) -> DerivativeTask:
        unsigned = cls(storage, source, spec, output_format, name)
        return cls(storage, source, spec, output_format, name, _sign(unsigned._message()))

    def arguments(self) -> dict[str, str]:
        """The task's JSON arguments."""
        return asdict(self)

    @classmethod
    def verified(cls, arguments: Mapping[str, object]) -> DerivativeTask:
        """The task of ``arguments``; :class:`InvalidSignature` unless this site signed them."""
        try:
            task = cls(**{key: str(arguments[key]) for key in _FIELDS})
        except KeyError as error:
            raise InvalidSignature(f"derivative task without {error}") from None
        if not _verify(task._message(), task.signature):
            raise InvalidSignature("bad derivative task signature")
        return task


_FIELDS = ("storage", "source", "spec", "format", "name", "signature")


def _sign(message: str, secret: str | bytes | None = None) -> str:
    if secret is None:
        from django.conf import settings

        secret = settings.SECRET_KEY
    return salted_hmac(_SALT, message, secret=secret, algorithm="sha256").hexdigest()


def _verify(message: str, signature: str) -> bool:
    from django.conf import settings

    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
    return any(constant_time_compare(signature, _sign(message, key)) for key in keys)


# ---------------------------------------------------------------- task records


def record_name(key: str) -> str:
    return f"{RECORDS}/{key}.json"


def read_record(store: DerivativeStore, key: str) -> dict[str, Any] | None:
    """The task record of the derivative of ``key`` (blocking), or ``None``."""
    try:
        record = json.loads(store.read(record_name(key)))
    except (FileNotFoundError, ValueError):
        return None
    except OSError as error:
        if error.errno == errno.ENOENT:
            return None
        raise
    return record if isinstance(record, dict) else None


def _write_record(store: DerivativeStore, key: str, record: Mapping[str, Any]) -> None:
    """Replace the record (atomically on disk; delete and save on other storages)."""
    name = record_name(key)
    data = json.dumps(dict(record)).encode()
    if store.root is not None:
        store.save(name, data)
        return
    with contextlib.suppress(FileNotFoundError):
        if store.storage.exists(name):
            store.storage.delete(name)
    saved = store.storage.save(name, ContentFile(data))
    if saved != name:  # another writer's meanwhile: theirs is as recent
        store.storage.delete(saved)


def _is_pending(record: Mapping[str, Any] | None) -> bool:
    """Whether a task is queued or running, not past its deadline (nor its worker dead,
    when that ran on this machine: killed mid-task, the next request queues it again)."""
    if record is None or record.get("state") not in ("queued", "running"):
        return False
    if float(record.get("expires", 0)) <= time.time():
        return False
    if record["state"] == "running" and record.get("host") == socket.gethostname():
        return _alive(int(record.get("pid", 0)))
    return True


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _failure(record: Mapping[str, Any]) -> FileResponseError:
    """The error a worker recorded, as its class when it is one of the library's."""
    error_class = getattr(exceptions, str(record.get("error", "")), None)
    message = str(record.get("message", "the worker failed"))
    if isinstance(error_class, type) and issubclass(error_class, ProcessingError):
        return error_class(message)
    return ProcessingUnavailable(f"the worker failed: {message}")


# ---------------------------------------------------------------- the web process


@runtime_checkable
class RemoteJobExecutor(Protocol):
    """Hands derivatives to workers elsewhere (``DERIVATIVES_EXECUTOR = "celery"``, ...)."""

    async def produce(self, task: DerivativeTask, store: DerivativeStore) -> None:
        """Return once ``task``'s derivative is stored; raise its failure, or ``503``."""
        ...

    def shutdown(self) -> None: ...


class RemoteExecutor:
    """Enqueue once, then wait for the store (or answer ``503``); subclasses enqueue."""

    def __init__(self) -> None:
        config = get_config()
        self.timeout = float(config.DERIVATIVES_TIMEOUT)
        self.wait = config.DERIVATIVES_REMOTE_WAIT
        self.queue = config.DERIVATIVES_QUEUE
        self.redis_url = config.DERIVATIVES_REDIS_URL
        self.retry_after = max(1, config.RETRY_AFTER)

    async def enqueue(self, task: DerivativeTask) -> None:
        """Put ``task`` on the queue (:class:`ProcessingUnavailable` when it is down)."""
        raise NotImplementedError

    def shutdown(self) -> None:
        """Nothing to stop: the workers are not this process's."""

    async def produce(self, task: DerivativeTask, store: DerivativeStore) -> None:
        key = lock_key(task.name)
        deadline = asyncio.get_running_loop().time() + self.timeout
        async with self._notifications(key) as notified:
            # Under single-flight's locks: a task pending (queued by a request that
            # answered 503, or whose wait ended) is awaited, not queued again.
            if not _is_pending(await in_thread(read_record, store, key)):
                record = {"state": "queued", "expires": time.time() + self.timeout}
                await in_thread(_write_record, store, key, {**record, **_where()})
                await self.enqueue(task)
            if not self.wait:
                raise ProcessingUnavailable(
                    "the derivative is being made; try again", retry_after=self.retry_after
                )
            await self._until_stored(store, task.name, key, notified, deadline)

    async def _until_stored(
        self,
        store: DerivativeStore,
        name: str,
        key: str,
        notified: Callable[[float], Any] | None,
        deadline: float,
    ) -> None:
        loop = asyncio.get_running_loop()
        pause = _FIRST_PAUSE
        while True:
            if await store.aexists(name):
                return
            record = await in_thread(read_record, store, key)
            if record is not None and record.get("state") == "failed":
                raise _failure(record)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ProcessingUnavailable(
                    f"no worker made the derivative in {self.timeout:g}s",
                    retry_after=self.retry_after,
                )
            if notified is not None:
                await notified(min(remaining, _NOTIFIED_PAUSE))
            else:
                await asyncio.sleep(min(remaining, pause))
                pause = min(pause * 1.5, _LONGEST_PAUSE)

    @contextlib.asynccontextmanager
    async def _notifications(self, key: str) -> AsyncIterator[Callable[[float], Any] | None]:
        """A wait for the worker's message (subscribed before the task is queued), if Redis."""
        if not self.redis_url or not self.wait:
            yield None
            return
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(self.redis_url)
        pubsub = client.pubsub()
        try:
            try:
                await pubsub.subscribe(CHANNEL + key)
            except (redis.RedisError, OSError):
                logger.warning("no Redis at DERIVATIVES_REDIS_URL: polling the store instead")
                yield None
                return

            async def notified(seconds: float) -> None:
                try:
                    await pubsub.get_message(ignore_subscribe_messages=True, timeout=seconds)
                except (redis.RedisError, OSError):
                    await asyncio.sleep(seconds)

            yield notified
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            with contextlib.suppress(Exception):
                await client.aclose()


def _where() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


# ---------------------------------------------------------------- the worker


def make_derivative(arguments: Mapping[str, object]) -> dict[str, Any]:
    """Make the derivative of a task (the body of the Celery and Tasks tasks); its record.

    Blocking: it runs in a worker process, which it is meant to keep busy. Transient
    storage errors are retried with backoff (``DERIVATIVES_RETRIES``); the failure
    of the last try is recorded for the waiting web processes, and raised.
    """
    task = DerivativeTask.verified(arguments)
    config = get_config()
    store = get_store()
    key = lock_key(task.name)
    try:
        made, record = _make(task, store, key, config)
    except Exception as error:
        failed = {"state": "failed", "error": type(error).__name__, "message": str(error)}
        with contextlib.suppress(Exception):
            _retrying(lambda: _write_record(store, key, {**failed, **_where()}), config)
        _notify(config, key)
        raise
    _notify(config, key)
    return {"made": made, **record}


def _make(
    task: DerivativeTask, store: DerivativeStore, key: str, config: Config
) -> tuple[bool, dict[str, Any]]:
    from django.core.files.storage import storages

    source_storage = storages[task.storage]
    spec = parse_spec(task.spec)
    processor = processor_for(task.source, spec)
    check_available(processor, config)
    processor.check(spec, config)
    output = processor.output(task.format, config)
    engine = processor.version(config)
    max_bytes = config.DERIVATIVES_MAX_SOURCE_BYTES
    state = _retrying(
        lambda: stat_original(source_storage, task.storage, task.source, max_bytes), config
    )
    name = derivative_name(
        task.storage, task.source, state.version, spec, output.extension, engine=engine
    )
    if name != task.name:
        raise SourceChanged("the source changed since the request; try again")
    if _retrying(lambda: store.exists(name), config):
        record = _retrying(lambda: read_record(store, key), config) or {}
        if record.get("state") != "done":
            record = {"state": "done", "made": False, **_where()}
            _retrying(lambda: _write_record(store, key, record), config)
        return False, record
    started = time.time()
    running = {
        "state": "running",
        "started": started,
        "expires": started + config.DERIVATIVES_TIMEOUT,
    }
    _retrying(lambda: _write_record(store, key, {**running, **_where()}), config)
    clock = time.perf_counter()
    with _source_path(source_storage, state, max_bytes) as (path, identity):
        if processor.streams(spec):
            size, summary = _run_command(
                processor, spec, output, path, identity, config, store, name, state, engine
            )
        else:
            job = processor.job(spec, output, JobInput(path, identity=identity), config)
            result = run_job(job)
            _store(store, state, engine, name, result.data, config)
            size, summary = len(result.data), result.summary
    elapsed = time.perf_counter() - clock
    record = {"state": "done", "made": True, "started": started, "seconds": elapsed, **_where()}
    _retrying(lambda: _write_record(store, key, record), config)
    log_generated(
        name,
        state,
        spec,
        seconds=elapsed,
        size=size,
        summary=summary,
        worker_pid=os.getpid(),
    )
    return True, record


@contextlib.contextmanager
def _source_path(storage: Storage, state: SourceState, max_bytes: int) -> Any:
    """A path of the source on this machine: its own, or a bounded copy (removed after)."""
    if state.path is not None:
        yield state.path, state.identity
        return
    with tempfile.NamedTemporaryFile(prefix="fileresponse-source-") as copy:
        with storage.open(state.name, "rb") as source:
            copied = 0
            while chunk := source.read(_COPY_CHUNK):
                copied += len(chunk)
                if copied > max_bytes:
                    raise SourceChanged("the source grew past its size since its stat")
                copy.write(chunk)
        copy.flush()
        yield copy.name, None


def _run_command(
    processor: Processor,
    spec: Spec,
    output: Output,
    path: str,
    identity: tuple[int, int] | None,
    config: Config,
    store: DerivativeStore,
    name: str,
    state: SourceState,
    engine: str,
) -> tuple[int, str]:
    """A streaming processor's command run to its end, its stdout a temporary file, stored."""
    descriptor = open_checked(path, identity)
    try:
        source = JobInput(f"/dev/fd/{descriptor}", descriptor=descriptor)
        job = processor.job(spec, output, source, config)
        command = processor.command(job)
        label = str(
            getattr(spec, "command", None) or command.name or os.path.basename(command.argv[0])
        )
        timeout = command.timeout or float(config.DERIVATIVES_TIMEOUT)
        with tempfile.TemporaryFile() as stdout:
            run_to_end(command, descriptor, stdout, label=label, timeout=timeout)
            size = stdout.tell()
            _store(store, state, engine, name, stdout, config)
        return size, f"command {label} to its end"
    finally:
        os.close(descriptor)


def _store(
    store: DerivativeStore,
    state: SourceState,
    engine: str,
    name: str,
    data: bytes | IO[bytes],
    config: Config,
) -> None:
    """The manifest, then the derivative, atomically (retried: a file from its start)."""

    def save() -> None:
        store.write_manifest(state.storage_alias, state.name, engine)
        if not isinstance(data, bytes):
            data.seek(0)
        store.save(name, data)

    _retrying(save, config)


#: ``errno`` values of storage failures worth another try.
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNRESET,
        errno.ECONNREFUSED,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
        errno.EAGAIN,
        errno.EIO,
        errno.EPIPE,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
    }
)


def _is_transient(error: BaseException) -> bool:
    """A storage that did not answer (not a processing failure, a full disk or a bad spec)."""
    if isinstance(error, ProcessingUnavailable):
        return False
    if isinstance(error, SourceUnavailable):
        return True
    if isinstance(error, TimeoutError | ConnectionError):
        return True
    return isinstance(error, OSError) and error.errno in _TRANSIENT_ERRNOS


def _retrying(step: Callable[[], _Value], config: Config) -> _Value:
    """``step()``, tried again after 0.2, 0.4, 0.8... s on transient storage errors."""
    attempts = config.DERIVATIVES_RETRIES + 1
    for attempt in range(attempts):
        try:
            return step()
        except Exception as error:
            if attempt + 1 == attempts or not _is_transient(error):
                raise
            pause = 0.2 * 2**attempt
            logger.warning("storage error (%s); trying again in %.1f s", error, pause)
            time.sleep(pause)
    raise AssertionError("unreachable")


def _notify(config: Config, key: str) -> None:
    """Tell the waiting web processes (Redis pub/sub); they look at the store anyway."""
    if not config.DERIVATIVES_REDIS_URL:
        return
    try:
        import redis

        client = redis.Redis.from_url(config.DERIVATIVES_REDIS_URL, socket_timeout=5)
        try:
            client.publish(CHANNEL + key, "done")
        finally:
            client.close()
    except Exception as error:  # the waiters poll the store: a lost message costs a second
        logger.warning("could not notify the web processes: %s", error)
