"""``manage.py fileresponse_transfers``: the pending and failed background transfers, re-queued.

::

    $ python manage.py fileresponse_transfers             # list pending and failed
    $ python manage.py fileresponse_transfers --retry     # and queue them again
    $ python manage.py fileresponse_transfers --failed --retry --storage default

Transfers are the files of QueuedStorages on their way to the remote storage;
staged uploads (:mod:`fileresponse.uploads`) are listed and re-queued too. A
pending transfer that a worker holds (its lease has not expired) is left to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from fileresponse.storage.queued.storage import QueuedStorage
from fileresponse.uploads import requeue_upload


class Command(BaseCommand):
    help = "List pending and failed background transfers (and staged uploads); --retry re-queues."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--retry", action="store_true", help="queue them again")
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--failed", action="store_true", help="failed ones only")
        which.add_argument("--pending", action="store_true", help="pending ones only")
        which.add_argument("--all", action="store_true", help="done ones too (never re-queued)")
        parser.add_argument("--storage", help="the transfers of this QueuedStorage alias only")

    def handle(self, *args: Any, **options: Any) -> None:
        from django.core.files.storage import storages

        from fileresponse.models import StagedUpload, Transfer

        State = Transfer.State
        states = (
            [State.FAILED]
            if options["failed"]
            else [State.PENDING]
            if options["pending"]
            else [State.PENDING, State.FAILED, State.DONE]
            if options["all"]
            else [State.PENDING, State.FAILED]
        )
        transfers = Transfer.objects.filter(state__in=states).order_by("created", "pk")
        uploads = StagedUpload.objects.filter(state__in=states).order_by("created", "pk")
        alias = options["storage"]
        if alias is not None:
            if not isinstance(
                storages[alias] if alias in storages.backends else None, QueuedStorage
            ):
                raise CommandError(f"{alias!r} is no QueuedStorage of STORAGES")
            transfers = transfers.filter(storage=alias)
            uploads = uploads.none()
        now = timezone.now()
        rows = [
            (
                row.state,
                row.attempts,
                _age(row.updated, now),
                f"{row.storage}:{row.name}",
                row.error,
            )
            for row in transfers
        ] + [
            (
                row.state,
                row.attempts,
                _age(row.updated, now),
                f"upload {row.model}#{row.object_pk}.{row.field} <- {row.staged_name}",
                row.error,
            )
            for row in uploads
        ]
        if rows:
            self.stdout.write(f"{'state':<8} {'attempts':>8}  {'age':>5}  file")
            for state, attempts, age, what, error in rows:
                line = f"{state:<8} {attempts:>8}  {age:>5}  {what}"
                self.stdout.write(line + (f"  ({_one_line(error)})" if error else ""))
        counts = {state: sum(1 for row in rows if row[0] == state) for state in states}
        self.stdout.write(", ".join(f"{count} {state}" for state, count in counts.items()))
        if options["retry"]:
            self._retry(list(transfers), list(uploads), now)

    def _retry(self, transfers: list[Any], uploads: list[Any], now: datetime) -> None:
        from django.core.files.storage import storages

        from fileresponse.models import Transfer

        queued = held = 0
        for row in transfers:
            if row.state == Transfer.State.DONE:
                continue
            if (
                row.state == Transfer.State.PENDING
                and row.claimed_until
                and row.claimed_until > now
            ):
                held += 1
                continue
            storage = storages[row.storage]
            if not isinstance(storage, QueuedStorage):
                self.stderr.write(f"skipped {row.storage}:{row.name}: no QueuedStorage")
                continue
            Transfer.objects.filter(pk=row.pk, state=row.state).update(
                state=Transfer.State.PENDING, attempts=0, claimed_until=None
            )
            storage.queue(row.name)
            queued += 1
        for upload in uploads:
            if upload.state != Transfer.State.DONE:
                requeue_upload(upload)
                queued += 1
        message = f"re-queued {queued}"
        if held:
            message += f"; {held} left to the worker that holds it (lease not expired)"
        self.stdout.write(message)


def _age(moment: datetime, now: datetime) -> str:
    seconds = max(int((now - moment).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _one_line(text: str, width: int = 120) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
