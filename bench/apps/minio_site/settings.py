"""Django site serving the benchmark bucket with fileresponse (bench/serve_minio.py).

The bucket comes from BENCH_MINIO_ENDPOINT, BENCH_MINIO_ACCESS_KEY, BENCH_MINIO_SECRET_KEY and
BENCH_MINIO_BUCKET, set by bench/serve_minio.py. With BENCH_FAST_PATH=1 (peer
fileresponse-fastpath) ``/files/`` is a fast path to the same storage: the same view,
answered before URL resolution and request signals.
"""

import os

from _common import *  # noqa: F403

ROOT_URLCONF = "minio_site.urls"
INSTALLED_APPS = ["fileresponse"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "minio": {
        "BACKEND": "fileresponse.storage.MinioStorage",
        "OPTIONS": {
            "endpoint": os.environ.get("BENCH_MINIO_ENDPOINT", "127.0.0.1:9000"),
            "access_key": os.environ.get("BENCH_MINIO_ACCESS_KEY", ""),
            "secret_key": os.environ.get("BENCH_MINIO_SECRET_KEY", ""),
            "bucket": os.environ.get("BENCH_MINIO_BUCKET", "bench"),
            "secure": False,
            "region": "us-east-1",
        },
    },
}

if os.environ.get("BENCH_FAST_PATH") == "1":
    FILERESPONSE = {"FAST_PATHS": {"/files/": {"storage": "minio"}}}
