"""The Celery task of background jobs: ``fileresponse.run_job`` (``fileresponse[celery]``).

Workers import this module (``Celery(include=["fileresponse.storage.queued.celery_tasks"])``
or ``CELERY_IMPORTS``). A message is acknowledged once its job ended, so a
worker killed mid-job leaves it to the broker to deliver again; the job's row
says whether anything is left to do.
"""

from __future__ import annotations

from celery import shared_task

from .jobs import run_job as run_job_here

__all__ = ["run_job"]


@shared_task(  # type: ignore[untyped-decorator]
    name="fileresponse.run_job", acks_late=True, reject_on_worker_lost=True
)
def run_job(job: str, arguments: list[str]) -> None:
    run_job_here(job, arguments, worker=True)
