"""The Django Tasks task of background jobs (``django.tasks`` on Django 6, else ``django-tasks``).

Arguments are JSON: a job name and strings. Any backend that runs tasks in
another process (the database backend and its ``db_worker``) does for
transfers and uploads what Celery does.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .jobs import run_job as run_job_here

try:
    from django.tasks import task
except ImportError:  # Django 5.2: the backport
    try:
        from django_tasks import task  # type: ignore[no-redef,import-not-found,unused-ignore]
    except ImportError as error:
        raise ImproperlyConfigured(
            "TRANSFERS_ENGINE 'tasks' needs Django 6 or the django-tasks backport"
        ) from error

__all__ = ["run_job"]


@task()
def run_job(job: str, arguments: list[str]) -> None:
    run_job_here(job, arguments, worker=True)
