"""System checks: misconfiguration fails ``manage.py check`` and start-up, not requests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from .conf import validate

__all__ = ["check_settings"]


@register()
def check_settings(**kwargs: Any) -> list[CheckMessage]:
    configured = getattr(settings, "FILERESPONSE", {}) or {}
    if not isinstance(configured, Mapping):
        return [Error("FILERESPONSE must be a dict.", id="fileresponse.E001")]
    return [
        Error(f"FILERESPONSE: {problem}.", id="fileresponse.E002")
        for problem in validate(configured)
    ]
