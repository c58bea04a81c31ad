"""Single-flight: in one process, across processes (flock), across machines (leases)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage

from fileresponse.derivatives.exceptions import NotAnImage, ProcessingUnavailable
from fileresponse.derivatives.singleflight import (
    MachineLock,
    RedisLease,
    SingleFlight,
    StorageLease,
    lock_key,
)
from fileresponse.derivatives.store import DerivativeStore

KEY = lock_key("pillow-1/default/ab/abcd/1-2/100x100.jpg")


def flight(tmp_path: Path, **options: object) -> SingleFlight:
    return SingleFlight(MachineLock(str(tmp_path / "locks")), **options)  # type: ignore[arg-type]


class Recorder:
    """A fake production: counts runs, takes a while, then marks the result done."""

    def __init__(self, seconds: float = 0.05, error: Exception | None = None) -> None:
        self.runs = 0
        self.done = False
        self.seconds = seconds
        self.error = error

    async def is_done(self) -> bool:
        return self.done

    async def produce(self) -> None:
        self.runs += 1
        await asyncio.sleep(self.seconds)
        if self.error is not None:
            raise self.error
        self.done = True


async def test_concurrent_calls_run_once(tmp_path: Path) -> None:
    single = flight(tmp_path)
    recorder = Recorder()
    results = await asyncio.gather(
        *(single.run(KEY, recorder.is_done, recorder.produce) for _ in range(50))
    )
    assert recorder.runs == 1
    assert results.count(True) == 50, "they all waited on the flight that ran it"
    assert await single.run(KEY, recorder.is_done, recorder.produce) is False
    assert recorder.runs == 1


async def test_errors_reach_every_waiter_and_the_next_call_tries_again(tmp_path: Path) -> None:
    single = flight(tmp_path)
    recorder = Recorder(error=NotAnImage("nope"))
    outcomes = await asyncio.gather(
        *(single.run(KEY, recorder.is_done, recorder.produce) for _ in range(5)),
        return_exceptions=True,
    )
    assert all(isinstance(outcome, NotAnImage) for outcome in outcomes)
    assert recorder.runs == 1
    recorder.error = None
    assert await single.run(KEY, recorder.is_done, recorder.produce) is True
    assert recorder.runs == 2


async def test_a_cancelled_waiter_does_not_cancel_the_run(tmp_path: Path) -> None:
    single = flight(tmp_path)
    recorder = Recorder(seconds=0.2)
    first = asyncio.ensure_future(single.run(KEY, recorder.is_done, recorder.produce))
    second = asyncio.ensure_future(single.run(KEY, recorder.is_done, recorder.produce))
    await asyncio.sleep(0.05)
    first.cancel()
    assert await second is True
    assert recorder.done
    assert recorder.runs == 1


def _holder(lock_dir: Path, key: str) -> subprocess.Popen[bytes]:
    """A process that takes the lock of ``key`` and keeps it until killed."""
    script = textwrap.dedent(
        f"""
        import fcntl, os, sys, time
        from fileresponse.derivatives.singleflight import MachineLock
        lock = MachineLock({str(lock_dir)!r})
        os.makedirs(lock.directory, exist_ok=True)
        descriptor = os.open(lock.path_for({key!r}), os.O_RDWR | os.O_CREAT)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )


async def test_another_process_holds_the_lock_until_it_dies(tmp_path: Path) -> None:
    lock = MachineLock(str(tmp_path / "locks"))
    with _holder(tmp_path / "locks", KEY) as holder:
        try:
            assert holder.stdout is not None
            assert await asyncio.to_thread(holder.stdout.readline) == b"locked\n"
            started = time.monotonic()
            with pytest.raises(ProcessingUnavailable):
                async with lock.hold(KEY, time.monotonic() + 0.3):
                    pass
            assert 0.3 <= time.monotonic() - started < 2.0, "waited, asynchronously, then gave up"
            holder.kill()  # a crashed holder: the kernel drops its lock
            holder.wait(10)
            started = time.monotonic()
            async with lock.hold(KEY, time.monotonic() + 5):
                acquired_after = time.monotonic() - started
            assert acquired_after < 0.5
        finally:
            if holder.poll() is None:
                holder.kill()


async def test_the_event_loop_keeps_running_while_waiting(tmp_path: Path) -> None:
    lock = MachineLock(str(tmp_path / "locks"))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async with lock.hold(KEY, time.monotonic() + 1):
        task = asyncio.ensure_future(ticker())
        with pytest.raises(ProcessingUnavailable):
            async with lock.hold(KEY, time.monotonic() + 0.3):  # same process, second open
                pass
        task.cancel()
    assert ticks >= 10


# ---------------------------------------------------------------- leases


@pytest.fixture
def store(tmp_path: Path) -> DerivativeStore:
    return DerivativeStore(FileSystemStorage(location=str(tmp_path / "store")))


async def test_storage_lease(store: DerivativeStore) -> None:
    lease = StorageLease(store, settle=0.01)
    token = await lease.acquire(KEY, 30)
    assert token is not None
    assert await lease.acquire(KEY, 30) is None, "held"
    record = json.loads(store.read(StorageLease.name_for(KEY)))
    assert record["token"] == token
    await lease.release(KEY, "someone else's token")
    assert await lease.acquire(KEY, 30) is None, "only the holder releases"
    await lease.release(KEY, token)
    assert not await asyncio.to_thread(store.exists, StorageLease.name_for(KEY))
    assert await lease.acquire(KEY, 30) is not None


async def test_an_expired_lease_is_taken_over(store: DerivativeStore) -> None:
    lease = StorageLease(store, settle=0.01)
    assert await lease.acquire(KEY, 0.05) is not None
    await asyncio.sleep(0.1)  # its holder died: nobody renewed or released it
    assert await lease.acquire(KEY, 30) is not None


async def test_contending_leases_have_one_winner(store: DerivativeStore) -> None:
    leases = [StorageLease(store, settle=0.1) for _ in range(8)]
    tokens = await asyncio.gather(*(lease.acquire(KEY, 30) for lease in leases))
    assert len([token for token in tokens if token is not None]) == 1


async def test_single_flight_with_a_lease(tmp_path: Path, store: DerivativeStore) -> None:
    """Two "machines" (two flights, separate lock dirs) share one storage and its leases."""
    recorder = Recorder(seconds=0.2)
    machines = [
        SingleFlight(
            MachineLock(str(tmp_path / f"machine-{index}")), StorageLease(store, settle=0.02)
        )
        for index in range(2)
    ]
    await asyncio.gather(
        *(
            machine.run(KEY, recorder.is_done, recorder.produce)
            for machine in machines
            for _ in range(5)
        )
    )
    assert recorder.runs == 1
    assert not await asyncio.to_thread(store.exists, StorageLease.name_for(KEY)), "released"


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server here")
def test_redis_lease(tmp_path: Path) -> None:
    redis = pytest.importorskip("redis")
    from tests.s3server import free_port

    port = free_port()
    lease = RedisLease(f"redis://127.0.0.1:{port}/0")

    async def exercise() -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                token = await lease.acquire(KEY, 30)
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        assert token is not None
        assert await lease.acquire(KEY, 30) is None
        await lease.release(KEY, "someone else's token")
        assert await lease.acquire(KEY, 30) is None
        await lease.release(KEY, token)
        assert await lease.acquire(KEY, 30) is not None

    with subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        cwd=tmp_path,
    ) as server:
        try:
            asyncio.run(exercise())
        finally:
            server.terminate()
            server.wait(10)
