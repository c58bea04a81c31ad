"""``DERIVATIVES_EXECUTOR = "celery"``: derivatives made by Celery workers (:mod:`.remote`).

Needs ``fileresponse[celery]`` (Celery 5). Workers run the task
``fileresponse.derivatives.make`` of this module: include it in the app
(``Celery(..., include=["fileresponse.derivatives.celery_executor"])``). The web
process sends it by name through ``DERIVATIVES_CELERY_APP`` (else Celery's current
app) to ``DERIVATIVES_QUEUE``; the broker need not know this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

from fileresponse.conf import get_config
from fileresponse.threads import in_thread

from .exceptions import ProcessingUnavailable
from .remote import RemoteExecutor, make_derivative

if TYPE_CHECKING:
    from .remote import DerivativeTask

try:
    import celery
    from celery import shared_task
except ImportError as error:  # pragma: no cover - the extra is installed in the tests
    raise ImproperlyConfigured(
        "DERIVATIVES_EXECUTOR 'celery' needs Celery: pip install 'fileresponse[celery]'"
    ) from error

__all__ = ["TASK_NAME", "CeleryExecutor", "make"]

TASK_NAME = "fileresponse.derivatives.make"


@shared_task(name=TASK_NAME, ignore_result=True)  # type: ignore[untyped-decorator]
def make(arguments: dict[str, str]) -> dict[str, Any]:
    """Make one derivative (in a worker): :func:`~.remote.make_derivative`."""
    return make_derivative(arguments)


class CeleryExecutor(RemoteExecutor):
    """Sends one task per derivative to the Celery broker, then waits for the store."""

    def __init__(self) -> None:
        super().__init__()
        app_path = get_config().DERIVATIVES_CELERY_APP
        if app_path is None:
            self.app = celery.current_app
        else:
            from django.utils.module_loading import import_string

            try:
                self.app = import_string(app_path)
            except ImportError as error:
                raise ImproperlyConfigured(
                    f"DERIVATIVES_CELERY_APP {app_path!r} cannot be imported: {error}"
                ) from error

    def _send(self, task: DerivativeTask) -> None:
        options = {} if self.queue is None else {"queue": self.queue}
        self.app.send_task(TASK_NAME, args=[task.arguments()], **options)

    async def enqueue(self, task: DerivativeTask) -> None:
        from kombu.exceptions import OperationalError

        try:
            await in_thread(self._send, task)  # the broker's client blocks
        except (OperationalError, OSError) as error:
            raise ProcessingUnavailable(
                f"the Celery broker does not answer: {error}", retry_after=self.retry_after
            ) from None
