"""Single-flight: N concurrent misses of one derivative cause one processing run.

Three layers, each cheaper than the next:

1. **In this process**: one task per key and event loop; every request for
   the key awaits it (shielded, so a client that goes away does not cancel
   the run the others wait for).
2. **On this machine**: an exclusive ``flock`` on a lock file in
   ``DERIVATIVES_LOCK_DIR`` (default ``DERIVATIVES_ROOT/.locks``, or
   ``<tmp>/fileresponse-locks`` for remote storages). The lock is tried
   without blocking, in an I/O thread, and retried with a growing pause, so
   waiters wait asynchronously; a process that dies holding it loses it at
   once (the kernel drops the lock with the descriptor). Waiting is bounded by
   ``DERIVATIVES_LOCK_TIMEOUT``. Lock files are 4096 buckets of the key's hash,
   created once and never removed (removing a lock file races with its users).
3. **Across machines** sharing the derivative storage, one of:

   - ``"storage"``: a lease object ``.locks/<key>.lease`` in the derivative
     storage (``{"token", "expires"}``), written, then read back after a
     short settling pause: the writer whose token is read back holds it. A
     holder that dies leaves a lease that expires after
     ``DERIVATIVES_TIMEOUT`` + 30 s. Django storages have no conditional
     create, so two machines writing within the settling pause can, rarely,
     both run: a wasted run, never a wrong result (writes are atomic and the
     bytes equal). Use Redis where even that must not happen.
   - ``"redis"``: ``SET key token NX PX lease`` at ``DERIVATIVES_REDIS_URL``,
     released by a compare-and-delete script: strict.

   ``"auto"`` (default) picks ``"redis"`` when ``DERIVATIVES_REDIS_URL`` is
   set, ``"local"`` (layers 1 and 2 only) for a derivative storage on this
   machine's file system, ``"storage"`` otherwise.

After taking a lock, the holder looks for the derivative again: whoever
waited finds it made and serves it, without a run of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import secrets
import tempfile
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from django.core.files.base import ContentFile

from fileresponse.conf import get_config, per_settings
from fileresponse.threads import in_thread

from .exceptions import ProcessingUnavailable
from .keys import lock_key

if TYPE_CHECKING:
    from .store import DerivativeStore

__all__ = [
    "LeaseLock",
    "MachineLock",
    "RedisLease",
    "SingleFlight",
    "StorageLease",
    "get_single_flight",
    "lock_key",
]

_BUCKETS = 4096
_FIRST_PAUSE = 0.002
_LONGEST_PAUSE = 0.05
_LEASE_PAUSE = 0.1
_SETTLE = 0.15
_LEASE_MARGIN = 30.0


def _pauses(longest: float) -> AsyncIterator[None]:
    async def pauses() -> AsyncIterator[None]:
        pause = _FIRST_PAUSE
        while True:
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, longest)
            yield

    return pauses()


# ---------------------------------------------------------------- this machine


class MachineLock:
    """Exclusive ``flock`` locks shared by every process of this machine."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def path_for(self, key: str) -> str:
        bucket = int(key[:8], 16) % _BUCKETS
        return os.path.join(self.directory, f"{bucket:03x}.lock")

    def _open(self, path: str) -> int:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except FileNotFoundError:  # the first lock of this directory
            os.makedirs(self.directory, exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)

    def _open_locked(self, path: str) -> tuple[int, bool]:
        """The lock file open, and whether this first try took the lock (one I/O thread hop)."""
        descriptor = self._open(path)
        try:
            return descriptor, self._try_lock(descriptor)
        except BaseException:
            os.close(descriptor)
            raise

    @staticmethod
    def _try_lock(descriptor: int) -> bool:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    @contextlib.asynccontextmanager
    async def hold(self, key: str, deadline: float) -> AsyncIterator[None]:
        """Hold the lock of ``key``; :class:`ProcessingUnavailable` at ``deadline`` (monotonic)."""
        descriptor, locked = await in_thread(self._open_locked, self.path_for(key))
        try:
            pauses = _pauses(_LONGEST_PAUSE)
            while not locked:
                if time.monotonic() >= deadline:
                    raise ProcessingUnavailable(
                        "waited too long for another run of this derivative"
                    )
                await anext(pauses)
                locked = await in_thread(self._try_lock, descriptor)
            yield
        finally:
            # Closing the descriptor releases the lock (the only descriptor of this open).
            os.close(descriptor)


# ---------------------------------------------------------------- across machines


class LeaseLock(Protocol):
    """A lock with an expiry, shared by the machines that share the derivative storage."""

    async def acquire(self, key: str, lease: float) -> str | None:
        """A token when the lock is ours now, ``None`` when someone else holds it."""
        ...

    async def release(self, key: str, token: str) -> None: ...


class StorageLease:
    """A lease object in the derivative storage (see the module's docs for its limits)."""

    def __init__(self, store: DerivativeStore, *, settle: float = _SETTLE) -> None:
        self.store = store
        self.settle = settle

    @staticmethod
    def name_for(key: str) -> str:
        return f".locks/{key}.lease"

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            record = json.loads(self.store.read(name))
        except (FileNotFoundError, ValueError):
            return None
        except OSError as error:
            if error.errno == errno.ENOENT:
                return None
            raise
        return record if isinstance(record, dict) else None

    def _write(self, name: str, record: dict[str, Any]) -> bool:
        """Write the lease over any other (whoever writes last holds it, if it reads it back)."""
        data = json.dumps(record).encode()
        if self.store.root is not None:
            self.store.save(name, data)  # an atomic replace
            return True
        storage = self.store.storage
        try:
            if storage.exists(name):
                storage.delete(name)
            saved = storage.save(name, ContentFile(data))
        except OSError:
            return False  # a contender deleted or wrote it meanwhile: not ours
        if saved != name:
            storage.delete(saved)
            return False
        return True

    async def acquire(self, key: str, lease: float) -> str | None:
        name = self.name_for(key)
        current = await in_thread(self._read, name)
        if current is not None and float(current.get("expires", 0)) > time.time():
            return None
        token = secrets.token_hex(16)
        record = {"token": token, "expires": time.time() + lease, "pid": os.getpid()}
        if not await in_thread(self._write, name, record):
            return None
        await asyncio.sleep(self.settle)
        current = await in_thread(self._read, name)
        return token if current is not None and current.get("token") == token else None

    async def release(self, key: str, token: str) -> None:
        name = self.name_for(key)
        current = await in_thread(self._read, name)
        if current is not None and current.get("token") == token:
            with contextlib.suppress(FileNotFoundError):
                await in_thread(self.store.storage.delete, name)


_RELEASE_SCRIPT = """
if redis.call("get", KEYS[1]) == ARGV[1] then
    return redis.call("del", KEYS[1])
end
return 0
"""


class RedisLease:
    """``SET NX PX`` at ``DERIVATIVES_REDIS_URL`` (needs the ``redis`` package: the
    ``celery`` extra)."""

    def __init__(self, url: str, *, prefix: str = "fileresponse:derivative-lock:") -> None:
        self.url = url
        self.prefix = prefix

    def _client(self) -> Any:
        try:
            import redis.asyncio
        except ImportError as error:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                "DERIVATIVES_LOCK 'redis' needs redis: pip install 'fileresponse[celery]'"
            ) from error
        return redis.asyncio.Redis.from_url(self.url)

    async def acquire(self, key: str, lease: float) -> str | None:
        token = secrets.token_hex(16)
        client = self._client()
        try:
            taken = await client.set(self.prefix + key, token, nx=True, px=int(lease * 1000))
        finally:
            await client.aclose()
        return token if taken else None

    async def release(self, key: str, token: str) -> None:
        client = self._client()
        try:
            await client.eval(_RELEASE_SCRIPT, 1, self.prefix + key, token)
        finally:
            await client.aclose()


# ---------------------------------------------------------------- all layers


class SingleFlight:
    """Runs ``produce`` at most once at a time per key, across processes and machines."""

    def __init__(
        self,
        machine_lock: MachineLock,
        lease_lock: LeaseLock | None = None,
        *,
        wait_timeout: float = 120.0,
        lease: float = 90.0,
    ) -> None:
        self.machine_lock = machine_lock
        self.lease_lock = lease_lock
        self.wait_timeout = wait_timeout
        self.lease = lease
        self._flights: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Task[bool]]
        ] = weakref.WeakKeyDictionary()

    async def run(
        self,
        key: str,
        is_done: Callable[[], Awaitable[bool]],
        produce: Callable[[], Awaitable[None]],
    ) -> bool:
        """Make sure ``produce`` has run for ``key``; ``True`` when this call's flight ran it.

        ``is_done`` tells whether the result is stored already (checked after
        each lock is taken). Errors of ``produce`` reach every waiter of this
        process; waiters in other processes find no result and try in turn.
        """
        flights = self._flights.setdefault(asyncio.get_running_loop(), {})
        task = flights.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fly(key, is_done, produce))
            flights[key] = task
            task.add_done_callback(lambda done: _forget(flights, key, done))
        return await asyncio.shield(task)

    async def _fly(
        self,
        key: str,
        is_done: Callable[[], Awaitable[bool]],
        produce: Callable[[], Awaitable[None]],
    ) -> bool:
        deadline = time.monotonic() + self.wait_timeout
        async with self.machine_lock.hold(key, deadline):
            if await is_done():
                return False
            if self.lease_lock is None:
                await produce()
                return True
            token = await self._lease(key, deadline, is_done)
            if token is None:
                return False
            try:
                if await is_done():
                    return False
                await produce()
                return True
            finally:
                await self.lease_lock.release(key, token)

    async def _lease(
        self, key: str, deadline: float, is_done: Callable[[], Awaitable[bool]]
    ) -> str | None:
        """The lease of ``key``, or ``None`` once another machine has made the result."""
        assert self.lease_lock is not None
        pauses = _pauses(_LEASE_PAUSE)
        while True:
            token = await self.lease_lock.acquire(key, self.lease)
            if token is not None:
                return token
            if await is_done():
                return None
            if time.monotonic() >= deadline:
                raise ProcessingUnavailable("waited too long for another machine's run")
            await anext(pauses)


def _forget(flights: dict[str, asyncio.Task[bool]], key: str, task: asyncio.Task[bool]) -> None:
    if flights.get(key) is task:
        del flights[key]
    if not task.cancelled():
        task.exception()  # retrieved: no "never retrieved" warning when nobody waits


@per_settings("FILERESPONSE")
def _flights() -> weakref.WeakKeyDictionary[DerivativeStore, SingleFlight]:
    return weakref.WeakKeyDictionary()


def get_single_flight(store: DerivativeStore) -> SingleFlight:
    """The single-flight of ``store`` under the settings in force (one per store)."""
    flights = _flights()
    flight = flights.get(store)
    if flight is None:
        flight = flights.setdefault(store, _build_single_flight(store))
    return flight


def _build_single_flight(store: DerivativeStore) -> SingleFlight:
    config = get_config()
    directory = config.DERIVATIVES_LOCK_DIR
    if directory is None:
        directory = (
            os.path.join(store.root, ".locks")
            if store.root is not None
            else os.path.join(tempfile.gettempdir(), "fileresponse-locks")
        )
    mode = config.DERIVATIVES_LOCK
    if mode == "auto":
        if config.DERIVATIVES_REDIS_URL:
            mode = "redis"
        else:
            mode = "local" if store.root is not None else "storage"
    lease_lock: LeaseLock | None = None
    if mode == "storage":
        lease_lock = StorageLease(store)
    elif mode == "redis":
        if not config.DERIVATIVES_REDIS_URL:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured("DERIVATIVES_LOCK 'redis' needs DERIVATIVES_REDIS_URL")
        lease_lock = RedisLease(config.DERIVATIVES_REDIS_URL)
    return SingleFlight(
        MachineLock(directory),
        lease_lock,
        wait_timeout=float(config.DERIVATIVES_LOCK_TIMEOUT),
        lease=float(config.DERIVATIVES_TIMEOUT) + _LEASE_MARGIN,
    )
