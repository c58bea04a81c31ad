"""Run slots: at most ``DERIVATIVES_MAX_RUNS[kind]`` runs of a kind at a time per process.

A run takes a slot of its processor's kind before it starts (a job in the
executor, a streamed command when its run is created) and gives it back when
it ends; one more run of a full kind is :class:`ProcessingUnavailable`
(``503`` with ``Retry-After``). Kinds the setting does not name are bounded by
``DERIVATIVES_MAX_PENDING`` alone.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import TYPE_CHECKING

from .exceptions import ProcessingUnavailable

if TYPE_CHECKING:
    from types import TracebackType

    from fileresponse.conf import Config

__all__ = ["RunSlot", "running", "take_slot"]

_RETRY_AFTER = 2

_lock = threading.Lock()
#: Runs holding a slot in this process, by kind.
_running: Counter[str] = Counter()


class RunSlot:
    """One run's slot, given back once by :meth:`release` (or at the end of a ``with``)."""

    def __init__(self, kind: str | None) -> None:
        self.kind = kind

    def release(self) -> None:
        kind, self.kind = self.kind, None
        if kind is not None:
            with _lock:
                _running[kind] -= 1

    def __enter__(self) -> RunSlot:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def take_slot(kind: str, config: Config) -> RunSlot:
    """A slot for one more run of ``kind``; :class:`ProcessingUnavailable` when all are taken."""
    limit = config.DERIVATIVES_MAX_RUNS.get(kind)
    if limit is None:
        return RunSlot(None)
    with _lock:
        if _running[kind] >= limit:
            raise ProcessingUnavailable(
                f"too many {kind} derivatives in progress ({_running[kind]})",
                retry_after=_RETRY_AFTER,
            )
        _running[kind] += 1
    return RunSlot(kind)


def running(kind: str) -> int:
    """The runs of ``kind`` holding a slot in this process now."""
    with _lock:
        return _running[kind]
