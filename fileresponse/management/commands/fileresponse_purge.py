"""``manage.py fileresponse_purge``: remove derivatives no request can be served from.

::

    $ python manage.py fileresponse_purge --dry-run
    $ python manage.py fileresponse_purge

Removes the derivatives of sources that are gone or changed since they were
made, those of older engine versions, orphan directories, temporary files of
crashed writes older than ``--temp-age`` seconds, and expired lease objects.
Each source is stat'ed once. Safe to run while the site serves: a derivative
removed while requested is made again.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from fileresponse.derivatives.maintenance import purge


class Command(BaseCommand):
    help = "Remove derivatives of sources that are gone or changed (and other leftovers)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="only tell what would be removed"
        )
        parser.add_argument(
            "--temp-age",
            type=float,
            default=3600.0,
            help="remove temporary files older than this many seconds (default 3600)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verbose = options["verbosity"] >= 2
        report = purge(
            dry_run=options["dry_run"],
            temp_age=options["temp_age"],
            log=self.stdout.write if verbose else None,
        )
        for error in report.errors:
            self.stderr.write(f"kept (cannot stat): {error}")
        verb = "would remove" if options["dry_run"] else "removed"
        self.stdout.write(
            f"{verb} {report.removed} derivative file(s): {report.sources_gone} source(s) gone, "
            f"{report.sources_changed} changed, {report.sources_kept} kept; "
            f"{report.temporary} temporary file(s), {report.leases} expired lease(s)"
        )
