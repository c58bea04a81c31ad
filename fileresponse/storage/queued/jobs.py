"""The jobs that engines run, by name, and how a worker runs one.

A message names a job of :data:`JOBS` and gives it strings; nothing else
can be asked, so a message can import no other code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from django.utils.module_loading import import_string

__all__ = ["JOBS", "run_job"]

#: The jobs an engine may run, by name: what a message may ask is this list, not any path.
JOBS: Mapping[str, str] = {
    "transfer": "fileresponse.storage.queued.transfer.run_transfer",
    "attach_upload": "fileresponse.uploads.attach_upload",
}


def run_job(job: str, arguments: Sequence[str]) -> None:
    """Run ``job`` here and now (what every engine's worker calls)."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r} (known: {', '.join(JOBS)})")
    function: Callable[..., None] = import_string(JOBS[job])
    function(*arguments)
