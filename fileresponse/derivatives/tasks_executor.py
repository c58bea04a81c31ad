"""``DERIVATIVES_EXECUTOR = "tasks"``: derivatives made by a Django Tasks backend's workers.

``django.tasks`` on Django 6, the ``django-tasks`` backport on 5.2
(``fileresponse[tasks]``, with the database backend ``django-tasks-db``). The task
is :data:`make` of this module, enqueued on the default backend and
``DERIVATIVES_QUEUE``; its arguments are JSON (:mod:`.remote`). A backend that runs
tasks in the web process (``ImmediateBackend``) works but is no remote worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

from .exceptions import ProcessingUnavailable
from .remote import RemoteExecutor, make_derivative

if TYPE_CHECKING:
    from .remote import DerivativeTask

try:
    from django.tasks import task
    from django.tasks.exceptions import InvalidTask as InvalidTaskError
except ImportError:  # Django 5.2: the backport
    try:
        from django_tasks import task  # type: ignore[no-redef]
        from django_tasks.exceptions import InvalidTaskError  # type: ignore[assignment]
    except ImportError as error:
        raise ImproperlyConfigured(
            "DERIVATIVES_EXECUTOR 'tasks' needs Django 6 or the django-tasks backport: "
            "pip install 'fileresponse[tasks]'"
        ) from error

__all__ = ["TasksExecutor", "make"]


@task()
def make(arguments: dict[str, str]) -> dict[str, Any]:
    """Make one derivative (in a worker): :func:`~.remote.make_derivative`."""
    return make_derivative(arguments)


class TasksExecutor(RemoteExecutor):
    """Enqueues one task per derivative on the Tasks backend, then waits for the store."""

    async def enqueue(self, task: DerivativeTask) -> None:
        chosen = make if self.queue is None else make.using(queue_name=self.queue)
        try:
            await chosen.aenqueue(task.arguments())
        except InvalidTaskError as error:
            raise ImproperlyConfigured(f"DERIVATIVES_EXECUTOR 'tasks': {error}") from error
        except OSError as error:
            raise ProcessingUnavailable(
                f"the Tasks backend does not answer: {error}", retry_after=self.retry_after
            ) from None
