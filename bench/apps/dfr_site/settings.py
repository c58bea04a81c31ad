"""Django site serving the benchmark bucket with django_fileresponse 0.1.0 (aiobotocore).

Runs in its own virtualenv (bench/.work/venv-django-fileresponse, made by
bench/serve_minio.py): that package is also called ``fileresponse``. Its settings,
as its README documents them, come from BENCH_MINIO_* set by bench/serve_minio.py.
"""

import os

from _common import *  # noqa: F403

ROOT_URLCONF = "dfr_site.urls"
INSTALLED_APPS: list[str] = []

FILERESPONSE_S3_ENDPOINT_URL = "http://" + os.environ.get("BENCH_MINIO_ENDPOINT", "127.0.0.1:9000")
FILERESPONSE_S3_ACCESS_KEY_ID = os.environ.get("BENCH_MINIO_ACCESS_KEY", "")
FILERESPONSE_S3_SECRET_ACCESS_KEY = os.environ.get("BENCH_MINIO_SECRET_KEY", "")
FILERESPONSE_S3_REGION = "us-east-1"
FILERESPONSE_S3_USE_SSL = False
BENCH_BUCKET = os.environ.get("BENCH_MINIO_BUCKET", "bench")
#: The README's example uses chunk_size=4096; BENCH_DFR_CHUNK_SIZE overrides it.
BENCH_CHUNK_SIZE = int(os.environ.get("BENCH_DFR_CHUNK_SIZE", "4096"))
