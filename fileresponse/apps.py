from __future__ import annotations

from django.apps import AppConfig


class FileResponseConfig(AppConfig):
    name = "fileresponse"
    verbose_name = "File responses"
    # The migrations' primary keys, whatever the project's DEFAULT_AUTO_FIELD.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
