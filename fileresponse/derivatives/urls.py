"""The URLconf of derivatives, to include under any prefix::

    urlpatterns = [
        path("derivatives/", include("fileresponse.derivatives.urls")),
    ]

URLs are built by :func:`fileresponse.derivatives.derivative_url` and the
template tags, which reverse ``fileresponse:derivative``; their format is
described in :mod:`fileresponse.derivatives.signing`.
"""

from __future__ import annotations

from django.urls import path

from fileresponse.derivatives.views import serve_derivative

app_name = "fileresponse"

urlpatterns = [
    path("<str:signature>/<str:options>/<path:name>", serve_derivative, name="derivative"),
]
