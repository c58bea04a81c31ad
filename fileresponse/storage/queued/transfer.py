"""One transfer of a QueuedStorage's file, in an order that a crash at any step survives.

Claim the row (a lease), copy the local file to the remote storage, verify
the copy by size and SHA-256, mark the row ``done``, and only then delete the
local copy. A worker that dies leaves the row ``pending`` and the local file
in place: reads go on locally, and the next attempt (after the lease) copies
again over any partial remote object. Failures are tried again with a
doubling delay, ``TRANSFERS_MAX_ATTEMPTS`` times, then the row is ``failed``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.core.files.base import File
from django.utils import timezone

from .engines import submit
from .storage import file_digest

if TYPE_CHECKING:
    from fileresponse.models import Transfer

    from .storage import QueuedStorage

__all__ = ["TransferCancelled", "TransferMismatch", "retry_delay", "run_transfer"]

logger = logging.getLogger("fileresponse.transfers")

#: Bytes read at a time while hashing and copying.
COPY_CHUNK = 1024 * 1024
#: The longest delay between two attempts.
MAX_RETRY_DELAY = 3600.0


class TransferMismatch(Exception):
    """The remote copy differs from the local file (size or checksum)."""


class TransferCancelled(Exception):
    """The file was deleted, or another worker claimed it, while it was being copied."""


def retry_delay(attempts: int, first: float) -> float:
    """Seconds before attempt ``attempts + 1``: ``first``, then doubling, capped at an hour."""
    return float(min(first * 2 ** max(attempts - 1, 0), MAX_RETRY_DELAY))


def run_transfer(alias: str, name: str) -> None:
    """Move ``name`` of the QueuedStorage ``STORAGES[alias]`` to its remote storage.

    Does nothing when the row is gone (deleted), ``done`` (the local copy is
    deleted if it was left behind), or held by another worker's live lease.
    """
    from django.core.files.storage import storages

    from fileresponse.models import Transfer

    from .storage import QueuedStorage

    storage = storages[alias]
    if not isinstance(storage, QueuedStorage):
        raise TypeError(f"STORAGES[{alias!r}] is no QueuedStorage")
    row = Transfer.objects.filter(storage=alias, name=name).first()
    if row is None:
        return
    if row.state == Transfer.State.DONE:
        _drop_local(storage, name)
        return
    lease = _claim(row, storage.lease)
    if lease is None:
        return
    try:
        size, checksum = _copy(storage, row, lease)
    except TransferCancelled as cancelled:
        logger.info("transfer of %s:%s cancelled: %s", alias, name, cancelled)
        return
    except Exception as error:
        _failed(storage, row, error)
        return
    marked = Transfer.objects.filter(pk=row.pk, state=Transfer.State.PENDING).update(
        state=Transfer.State.DONE,
        size=size,
        checksum=checksum,
        error="",
        claimed_until=None,
        done_at=timezone.now(),
    )
    if not marked:  # deleted while it was copied: the copy is nobody's
        if not Transfer.objects.filter(pk=row.pk).exists():
            storage.remote.delete(name)
        return
    logger.info("transferred %s:%s (%d bytes, sha256 %s)", alias, name, size, checksum)
    _drop_local(storage, name)


def _claim(row: Transfer, lease: float) -> _Lease | None:
    """Take the row for ``lease`` seconds and count the attempt; ``None`` if it is held."""
    from django.db.models import F, Q

    from fileresponse.models import Transfer

    now = timezone.now()
    until = now + timedelta(seconds=lease)
    claimed = (
        Transfer.objects.filter(pk=row.pk, state=Transfer.State.PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=until, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    row.refresh_from_db()
    return _Lease(row.pk, until, lease)


class _Lease:
    """The claim on a row, renewed while the copy goes on (a third of the lease at most)."""

    def __init__(self, pk: int, until: Any, seconds: float) -> None:
        self.pk = pk
        self.until = until
        self.seconds = seconds
        self._renewed = time.monotonic()

    def renew(self) -> None:
        if time.monotonic() - self._renewed < self.seconds / 3:
            return
        from fileresponse.models import Transfer

        until = timezone.now() + timedelta(seconds=self.seconds)
        held = Transfer.objects.filter(
            pk=self.pk, state=Transfer.State.PENDING, claimed_until=self.until
        ).update(claimed_until=until)
        if not held:
            raise TransferCancelled("the row was deleted, or its lease was lost")
        self.until = until
        self._renewed = time.monotonic()


def _copy(storage: QueuedStorage, row: Transfer, lease: _Lease) -> tuple[int, str]:
    """Copy ``row.name`` to the remote storage and verify it: its size and SHA-256."""
    from fileresponse.models import Transfer

    local, remote, name = storage.local, storage.remote, row.name
    size, checksum = file_digest(local, name, lease.renew)
    Transfer.objects.filter(pk=row.pk).update(size=size, checksum=checksum)
    if remote.exists(name):
        if row.attempts <= 1:  # not left by an attempt of ours: someone else's file
            raise TransferMismatch(f"{name!r} is taken in the remote storage")
        # Left by an interrupted attempt: while the row is pending the name is this file's.
        remote.delete(name)
    with local.open(name, "rb") as source:
        body = _MeteredFile(source, name, size, storage.rate_limit, lease.renew)
        saved = remote.save(name, body)
    if saved != name:
        remote.delete(saved)
        raise TransferMismatch(f"the remote storage saved {name!r} as {saved!r}")
    remote_size = remote.size(name)
    if remote_size == size:
        remote_size, remote_checksum = file_digest(remote, name, lease.renew)
        if remote_checksum == checksum and remote_size == size:
            return size, checksum
        problem = f"remote sha256 {remote_checksum} != local sha256 {checksum}"
    else:
        problem = f"remote size {remote_size} != local size {size}"
    remote.delete(name)
    raise TransferMismatch(problem)


class _MeteredFile(File):  # type: ignore[type-arg]
    """The local file as the remote storage reads it: at most ``rate`` bytes/s, lease renewed."""

    def __init__(
        self,
        file: Any,
        name: str,
        size: int,
        rate: float | None,
        tick: Callable[[], None],
    ) -> None:
        super().__init__(file, name)
        self._source = file
        self.size = size
        self._rate = rate
        self._tick = tick
        self._started = time.monotonic()
        self._sent = 0

    def read(self, size: int = -1) -> bytes:
        if self._rate is not None and size < 0:
            size = COPY_CHUNK
        data: bytes = self._source.read(size)
        self._sent += len(data)
        self._tick()
        if self._rate is not None:
            ahead = self._sent / self._rate - (time.monotonic() - self._started)
            if ahead > 0:
                time.sleep(ahead)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        position: int = self._source.seek(offset, whence)
        if position == 0:
            self._started, self._sent = time.monotonic(), 0
        return position


def _failed(storage: QueuedStorage, row: Transfer, error: Exception) -> None:
    """Record the error; submit the next attempt after its delay, or mark the row ``failed``."""
    from fileresponse.models import Transfer

    row.refresh_from_db()
    message = f"{type(error).__name__}: {error}"
    if row.attempts >= storage.max_attempts:
        Transfer.objects.filter(pk=row.pk, state=Transfer.State.PENDING).update(
            state=Transfer.State.FAILED, error=message, claimed_until=None
        )
        logger.error(
            "transfer of %s:%s failed after %d attempts: %s",
            row.storage,
            row.name,
            row.attempts,
            message,
        )
        return
    Transfer.objects.filter(pk=row.pk, state=Transfer.State.PENDING).update(
        error=message, claimed_until=None
    )
    delay = retry_delay(row.attempts, storage.retry_delay)
    logger.warning(
        "transfer of %s:%s failed (attempt %d), again in %gs: %s",
        row.storage,
        row.name,
        row.attempts,
        delay,
        message,
    )
    submit("transfer", [row.storage, row.name], delay=delay, engine=storage.engine)


def _drop_local(storage: QueuedStorage, name: str) -> None:
    if storage.delete_local and storage.local.exists(name):
        storage.local.delete(name)
