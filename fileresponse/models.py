"""The rows that background work leaves behind, so that a crash loses none of it.

:class:`Transfer` is the state of one file of a
:class:`~fileresponse.storage.QueuedStorage` on its way from the local to the
remote storage; :class:`StagedUpload` an upload staged by
:mod:`fileresponse.uploads` until a task attaches it to its model instance.
"""

from __future__ import annotations

from django.db import models

__all__ = ["StagedUpload", "Transfer"]


class State(models.TextChoices):
    PENDING = "pending", "pending"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class Transfer(models.Model):
    """A QueuedStorage's file: ``pending`` (read locally), ``done`` (read remotely), ``failed``.

    ``claimed_until`` is the lease of the worker copying it: a worker that
    dies leaves a lease that expires, and the transfer may be claimed again.
    """

    State = State

    storage = models.CharField(max_length=100, help_text="alias of the QueuedStorage in STORAGES")
    name = models.CharField(max_length=1024)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    size = models.BigIntegerField(null=True, blank=True)
    checksum = models.CharField(max_length=64, blank=True, help_text="SHA-256, hex")
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "fileresponse"
        constraints = [  # noqa: RUF012  (Django's Meta)
            models.UniqueConstraint(fields=["storage", "name"], name="fileresponse_transfer_unique")
        ]
        indexes = [  # noqa: RUF012
            models.Index(fields=["state", "updated"], name="fileresponse_transfer_state")
        ]

    def __str__(self) -> str:
        return f"{self.storage}:{self.name} ({self.state})"


class StagedUpload(models.Model):
    """An upload staged in a storage, waiting to be attached to ``model``'s ``field``.

    ``model`` is the instance's ``app_label.ModelName`` and ``object_pk`` its
    primary key as text; ``specs`` the derivatives to make once it is saved (one a line),
    ``callback`` the dotted path of a function called then.
    """

    State = State

    model = models.CharField(max_length=200)
    object_pk = models.CharField(max_length=100)
    field = models.CharField(max_length=100)
    staging_storage = models.CharField(max_length=100)
    staged_name = models.CharField(max_length=1024)
    original_name = models.CharField(max_length=255)
    saved_name = models.CharField(max_length=1024, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    #: The derivative specs, one a line (text: no JSON support asked of the database).
    specs = models.TextField(blank=True)
    callback = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "fileresponse"
        indexes = [  # noqa: RUF012
            models.Index(fields=["model", "object_pk", "field"], name="fileresponse_upload_target")
        ]

    def __str__(self) -> str:
        return f"{self.model}#{self.object_pk}.{self.field} <- {self.staged_name} ({self.state})"
