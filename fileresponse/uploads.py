"""Saving uploads in the background: stage at once, attach to the model in a task.

A view calls :func:`save_in_background` with a validated upload: the file is
written to a staging storage (local disk by default, fast), a
:class:`~fileresponse.models.StagedUpload` row is created, and the view
returns. A job (Celery, Django Tasks or this process's threads, as for
transfers) then saves the staged file into the instance's ``FileField``
(its storage may be slow and remote), makes the derivatives asked for, calls
the callback, sends :data:`upload_saved` and deletes the staged copy. Only
the row's id crosses the broker, never a file object. In a task queue's
worker the derivatives are made there, in its process, whatever
``DERIVATIVES_EXECUTOR`` says: a job that waited for derivative tasks would
wait for ever when they queue behind it (a worker of one slot).
"""

from __future__ import annotations

import asyncio
import logging
import os
import posixpath
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import File
from django.dispatch import Signal
from django.utils import timezone

from fileresponse.conf import get_config
from fileresponse.models import StagedUpload
from fileresponse.storage.queued.engines import submit
from fileresponse.storage.queued.jobs import in_worker
from fileresponse.storage.queued.transfer import retry_delay

if TYPE_CHECKING:
    from django.core.files.storage import Storage
    from django.db.models import Model

__all__ = [
    "StagedUpload",
    "attach_upload",
    "pending_upload",
    "requeue_upload",
    "save_in_background",
    "staging_storage",
    "upload_failed",
    "upload_saved",
    "upload_state",
]

logger = logging.getLogger("fileresponse.uploads")

#: Sent when an upload is attached to its instance (and its post-save work is done):
#: ``sender`` the model class, ``instance``, ``field`` (its name), ``upload`` (the row).
upload_saved = Signal()
#: Sent when an upload failed for good (``TRANSFERS_MAX_ATTEMPTS``); same arguments.
upload_failed = Signal()


def save_in_background(
    instance: Model,
    field: str,
    upload: File[Any],
    *,
    specs: Iterable[str] = (),
    callback: str | None = None,
) -> StagedUpload:
    """Stage ``upload`` for ``instance.<field>`` and return at once (the row, ``pending``).

    ``instance`` is saved first when it has no primary key. ``specs`` are
    derivative specs (``"300x200 fill webp"``) made once the file is in
    place (its storage must be one of ``DERIVATIVES_SOURCE_STORAGES``);
    ``callback`` the dotted path of a function called then with
    ``(instance, upload_row)``. While it is pending, :func:`upload_state`
    and :func:`pending_upload` tell so, and the row's ``staged_name`` is the
    file in :func:`staging_storage`.
    """
    from django.utils.module_loading import import_string

    from fileresponse.derivatives.spec import parse_spec

    model_field = instance._meta.get_field(field)
    if not hasattr(model_field, "storage"):
        raise ValueError(f"{type(instance).__name__}.{field} is no FileField")
    specs = [str(parse_spec(text)) for text in specs]
    if callback:
        import_string(callback)  # fails now rather than in the worker
    if instance.pk is None:
        instance.save()
    alias, staging = _staging()
    original = posixpath.basename(upload.name or "upload")
    staged = staging.save(f"{uuid.uuid4().hex}/{staging.get_valid_name(original)}", upload)
    row = StagedUpload.objects.create(
        model=instance._meta.label,
        object_pk=str(instance.pk),
        field=field,
        staging_storage=alias,
        staged_name=staged,
        original_name=original,
        specs="\n".join(specs),
        callback=callback or "",
    )
    submit("attach_upload", [str(row.pk)])
    return row


def pending_upload(instance: Model, field: str) -> StagedUpload | None:
    """The newest upload of ``instance.<field>`` not yet attached (pending or failed)."""
    return (
        StagedUpload.objects.filter(
            model=instance._meta.label, object_pk=str(instance.pk), field=field
        )
        .exclude(state=StagedUpload.State.DONE)
        .order_by("-created", "-pk")
        .first()
    )


def upload_state(instance: Model, field: str) -> str | None:
    """``pending``, ``failed`` or ``done``: the newest upload of ``instance.<field>``, ``None``."""
    state: str | None = (
        StagedUpload.objects.filter(
            model=instance._meta.label, object_pk=str(instance.pk), field=field
        )
        .order_by("-created", "-pk")
        .values_list("state", flat=True)
        .first()
    )
    return state


def staging_storage(alias: str = "") -> Storage:
    """Where uploads are staged: ``UPLOADS_STAGING_STORAGE``, else ``MEDIA_ROOT/.staging``."""
    return _staging(alias or None)[1]


def requeue_upload(upload: StagedUpload) -> None:
    """Queue ``upload`` again (``fileresponse_transfers --retry``), its attempts reset."""
    StagedUpload.objects.filter(pk=upload.pk).update(state=StagedUpload.State.PENDING, attempts=0)
    submit("attach_upload", [str(upload.pk)])


def attach_upload(upload_id: str) -> None:
    """The job: save the staged file into its field, do the post-save work, clean up."""
    from django.apps import apps
    from django.db.models import F

    row = StagedUpload.objects.filter(pk=int(upload_id)).first()
    if row is None or row.state != StagedUpload.State.PENDING:
        return
    StagedUpload.objects.filter(pk=row.pk).update(attempts=F("attempts") + 1)
    row.refresh_from_db()
    model = apps.get_model(row.model)
    instance = model._default_manager.filter(pk=row.object_pk).first()
    if instance is None:
        _give_up(row, None, "the instance was deleted")
        return
    staging = staging_storage(row.staging_storage)
    try:
        if not row.saved_name:
            row.saved_name = _attach(instance, row, staging)
            StagedUpload.objects.filter(pk=row.pk).update(saved_name=row.saved_name)
        _post_save(instance, row)
    except Exception as error:
        _failed(row, instance, error)
        return
    StagedUpload.objects.filter(pk=row.pk).update(
        state=StagedUpload.State.DONE, error="", done_at=timezone.now()
    )
    row.refresh_from_db()
    staging.delete(row.staged_name)
    logger.info("attached %s to %s#%s.%s", row.saved_name, row.model, row.object_pk, row.field)
    upload_saved.send(sender=model, instance=instance, field=row.field, upload=row)


def _attach(instance: Model, row: StagedUpload, staging: Storage) -> str:
    """Save the staged file through the field (its storage, its upload_to), set the column."""
    field_file = getattr(instance, row.field)
    with staging.open(row.staged_name, "rb") as staged:
        field_file.save(row.original_name, File(staged, row.original_name), save=False)
    # Only this column: the rest of the row may have changed since the upload.
    type(instance)._default_manager.filter(pk=instance.pk).update(**{row.field: field_file.name})
    name: str = field_file.name
    return name


def _post_save(instance: Model, row: StagedUpload) -> None:
    from django.utils.module_loading import import_string

    if row.specs:
        specs = row.specs.splitlines()
        _make_derivatives(getattr(instance, row.field).storage, row.saved_name, specs)
    if row.callback:
        import_string(row.callback)(instance, row)


def _make_derivatives(storage: Storage, name: str, specs: list[str]) -> None:
    from fileresponse.derivatives.executor import ThreadJobExecutor, get_executor
    from fileresponse.derivatives.maintenance import warm
    from fileresponse.derivatives.remote import RemoteJobExecutor
    from fileresponse.derivatives.spec import parse_spec

    alias = _alias_of(storage)
    # A queue's worker is off the web loop already: it makes them in its own threads
    # rather than enqueue tasks and wait for them (they could only run after this job).
    here = in_worker() and isinstance(get_executor(), RemoteJobExecutor)
    executor = ThreadJobExecutor() if here else None
    coroutine = warm(
        storage, alias, [name], [parse_spec(text) for text in specs], executor=executor
    )
    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            report = asyncio.run(coroutine)
        else:  # a worker that runs an event loop: a thread of its own
            with ThreadPoolExecutor(max_workers=1) as thread:
                report = thread.submit(asyncio.run, coroutine).result()
    finally:
        if executor is not None:
            executor.shutdown()
    if report.failed:
        raise RuntimeError("derivatives failed: " + "; ".join(report.failed))


def _alias_of(storage: Storage) -> str:
    from django.core.files.storage import default_storage, storages

    allowed = get_config().DERIVATIVES_SOURCE_STORAGES
    if storage is default_storage and "default" in allowed:
        return "default"
    for alias in allowed:
        if storages[alias] is storage:
            return alias
    raise ImproperlyConfigured(
        f"derivatives of uploads need the field's storage in DERIVATIVES_SOURCE_STORAGES {allowed}"
    )


def _failed(row: StagedUpload, instance: Model, error: Exception) -> None:
    message = f"{type(error).__name__}: {error}"
    config = get_config()
    if row.attempts >= config.TRANSFERS_MAX_ATTEMPTS:
        _give_up(row, instance, message)
        return
    StagedUpload.objects.filter(pk=row.pk).update(error=message)
    delay = retry_delay(row.attempts, config.TRANSFERS_RETRY_DELAY)
    logger.warning(
        "upload %s failed (attempt %d), again in %gs: %s", row, row.attempts, delay, message
    )
    submit("attach_upload", [str(row.pk)], delay=delay)


def _give_up(row: StagedUpload, instance: Model | None, message: str) -> None:
    from django.apps import apps

    StagedUpload.objects.filter(pk=row.pk).update(state=StagedUpload.State.FAILED, error=message)
    row.refresh_from_db()
    logger.error("upload %s failed: %s", row, message)
    upload_failed.send(
        sender=apps.get_model(row.model), instance=instance, field=row.field, upload=row
    )


def _staging(alias: str | None = None) -> tuple[str, Storage]:
    from django.conf import settings
    from django.core.files.storage import FileSystemStorage, storages

    alias = alias or get_config().UPLOADS_STAGING_STORAGE
    if alias:
        return alias, storages[alias]
    location = os.path.join(settings.MEDIA_ROOT, ".staging")
    return "", FileSystemStorage(location=location, base_url=None)
