"""``manage.py ensure_demo_admin``: the user ``admin`` (password ``admin``) when ``DEBUG`` is on
and no superuser exists, so that the demo's admin opens at once."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo's superuser admin/admin (DEBUG only, none there yet)."

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()
        if not settings.DEBUG or users.objects.filter(is_superuser=True).exists():
            return
        users.objects.create_superuser("admin", "admin@example.invalid", "admin")
        self.stdout.write("superuser admin (password admin) created for the demo")
