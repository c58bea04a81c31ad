"""The jobs that engines run, by name, and how a worker runs one.

A message names a job of :data:`JOBS` and gives it strings; nothing else
can be asked, so a message can import no other code. A job run by a task
queue's worker knows it (:func:`in_worker`): it must never wait for tasks of
a queue, which may be queued behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar

from django.utils.module_loading import import_string

__all__ = ["JOBS", "in_worker", "run_job"]

#: The jobs an engine may run, by name: what a message may ask is this list, not any path.
JOBS: Mapping[str, str] = {
    "transfer": "fileresponse.storage.queued.transfer.run_transfer",
    "attach_upload": "fileresponse.uploads.attach_upload",
}

_in_worker: ContextVar[bool] = ContextVar("fileresponse_job_in_worker", default=False)


def run_job(job: str, arguments: Sequence[str], *, worker: bool = False) -> None:
    """Run ``job`` here and now (what every engine's worker calls).

    ``worker``: this is a task queue's worker (Celery, Tasks), not this
    process's threads (the ``local`` engine).
    """
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r} (known: {', '.join(JOBS)})")
    function: Callable[..., None] = import_string(JOBS[job])
    token = _in_worker.set(worker)
    try:
        function(*arguments)
    finally:
        _in_worker.reset(token)


def in_worker() -> bool:
    """Whether the job running here runs in a task queue's worker (see :func:`run_job`)."""
    return _in_worker.get()
