"""The example's Celery app: ``celery -A example worker`` in ``example/`` starts a worker.

Configured from Django's settings (``CELERY_*``; the broker is ``CELERY_BROKER_URL``
of settings.ini), it knows the library's tasks: derivatives
(``DERIVATIVES_EXECUTOR = celery``), transfers of the queued storage and staged
uploads (``TRANSFERS_ENGINE`` follows the executor).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

app = Celery(
    "example",
    include=[
        "fileresponse.derivatives.celery_executor",
        "fileresponse.storage.queued.celery_tasks",
    ],
)
app.config_from_object("django.conf:settings", namespace="CELERY")
