"""Fixtures shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.s3server import S3Target


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Target]:
    """A real S3 server and an empty bucket: the suite's juicefs gateway, or the one named by
    ``FILERESPONSE_TEST_MINIO_*`` (see tests/s3server.py)."""
    pytest.importorskip("minio")
    pytest.importorskip("miniopy_async")
    target = S3Target.from_environment()
    if target is None:
        try:
            target = S3Target.start_gateway()
        except RuntimeError as error:
            if "no juicefs executable" in str(error):
                pytest.skip(f"no S3 server: {error}, or set FILERESPONSE_TEST_MINIO_ENDPOINT")
            raise
    try:
        target.create_bucket()
        yield target
    finally:
        target.close()
