"""A form saved in the background (``fileresponse.uploads``), for the live upload tests.

``POST queued/<name>`` saves its ``file`` in the QueuedStorage ``queued``.
``POST uploads/`` (``title``, ``image``, optional ``spec``s) validates the form,
saves the photo without its file, stages the file and answers at once with the
staged state; ``GET uploads/<pk>`` tells where the photo is.
"""

import os
from typing import Any

from django import forms
from django.core.files.storage import storages
from django.dispatch import receiver
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt

from fileresponse.uploads import pending_upload, save_in_background, upload_saved, upload_state
from tests.project.models import Photo


class PhotoForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Photo
        fields = ("title",)

    image = forms.FileField()


@csrf_exempt
def upload_photo(request: HttpRequest) -> JsonResponse:
    form = PhotoForm(request.POST, request.FILES)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    photo = form.save()
    staged = save_in_background(
        photo,
        "image",
        form.cleaned_data["image"],
        specs=request.POST.getlist("spec"),
        callback="tests.project.uploads.after_upload",
    )
    return JsonResponse(
        {
            "id": photo.pk,
            "state": staged.state,
            "staged_name": staged.staged_name,
            "pid": os.getpid(),
        },
        status=202,
    )


@csrf_exempt
def save_queued(request: HttpRequest, name: str) -> JsonResponse:
    """Save the posted ``file`` as ``name`` in ``STORAGES["queued"]`` (a QueuedStorage)."""
    saved = storages["queued"].save(name, request.FILES["file"])
    return JsonResponse({"name": saved}, status=201)


def photo_state(request: HttpRequest, pk: int) -> JsonResponse:
    photo = get_object_or_404(Photo, pk=pk)
    pending = pending_upload(photo, "image")
    return JsonResponse(
        {
            "state": upload_state(photo, "image"),
            "image": photo.image.name or None,
            "staged_name": pending.staged_name if pending else None,
            "error": pending.error if pending else None,
            "callback_pid": photo.callback_pid,
            "signalled": photo.signalled,
        }
    )


def after_upload(photo: Photo, upload: Any) -> None:
    Photo.objects.filter(pk=photo.pk).update(callback_pid=os.getpid())


@receiver(upload_saved, sender=Photo)
def _saved(sender: type[Photo], instance: Photo, **kwargs: Any) -> None:
    Photo.objects.filter(pk=instance.pk).update(signalled=True)
