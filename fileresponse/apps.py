from __future__ import annotations

from django.apps import AppConfig


class FileResponseConfig(AppConfig):
    name = "fileresponse"
    verbose_name = "File responses"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
