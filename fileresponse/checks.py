"""System checks: misconfiguration fails ``manage.py check`` and start-up, not requests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from .conf import validate, validate_minio_types

__all__ = ["check_minio", "check_settings"]


@register()
def check_settings(**kwargs: Any) -> list[CheckMessage]:
    configured = getattr(settings, "FILERESPONSE", {}) or {}
    if not isinstance(configured, Mapping):
        return [Error("FILERESPONSE must be a dict.", id="fileresponse.E001")]
    return [
        Error(f"FILERESPONSE: {problem}.", id="fileresponse.E002")
        for problem in validate(configured)
    ]


@register()
def check_minio(**kwargs: Any) -> list[CheckMessage]:
    """``FILERESPONSE_MINIO`` is valid, and each MinioStorage of ``STORAGES`` answers.

    Refused credentials and a missing bucket are errors; a storage that does
    not answer within its (capped) timeouts is a warning.
    """
    configured = getattr(settings, "FILERESPONSE_MINIO", None)
    if configured is not None:
        if not isinstance(configured, Mapping):
            return [Error("FILERESPONSE_MINIO must be a dict.", id="fileresponse.E010")]
        problems = validate_minio_types(configured)
        if problems:
            return [
                Error(f"FILERESPONSE_MINIO: {problem}.", id="fileresponse.E010")
                for problem in problems
            ]
    from .storage.minio import check_minio_storages

    kinds = {"error": Error, "warning": Warning}
    return [
        kinds[level](message, id=check_id) for level, check_id, message in check_minio_storages()
    ]
