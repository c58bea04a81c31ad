"""The model of the background upload tests: a photo whose file is attached by a job."""

from django.db import models


class Photo(models.Model):
    title = models.CharField(max_length=100)
    image = models.FileField(upload_to="photos/", blank=True)
    #: Set by ``tests.project.uploads.after_upload`` (the callback): the pid that ran it.
    callback_pid = models.IntegerField(null=True, blank=True)
    #: Set by the receiver of ``fileresponse.uploads.upload_saved``.
    signalled = models.BooleanField(default=False)

    class Meta:
        app_label = "project"

    def __str__(self) -> str:
        return self.title
