"""The Celery app of the tests' workers (``celery -A tests.project.celery:app worker``).

Configured from Django's settings (``CELERY_*``: the broker is
``FILERESPONSE_TEST_CELERY_BROKER``, see tests/project/settings.py); it knows
the library's derivative task. Started by :mod:`tests.queues`.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.project.settings")

app = Celery("tests", include=["fileresponse.derivatives.celery_executor"])
app.config_from_object("django.conf:settings", namespace="CELERY")
