"""Fixtures shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.queues import (  # noqa: F401  (fixtures: Redis, Celery and Tasks workers)
    celery_worker_factory,
    redis_server,
    redis_url,
    tasks_worker_factory,
)
from tests.s3server import S3Target
from tests.servers import (
    ALL_SERVERS,
    ASGI_SERVERS,
    PATCHED_SERVERS,
    LiveServer,
    MediaTree,
    ServerPool,
    build_media_tree,
)


@pytest.fixture(autouse=True)
def _no_connection_hygiene_without_a_database(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests without database access send ``request_started``/``request_finished`` (a
    response's ``close()``) with no database receiver: ``close_old_connections`` would
    touch the connection a database test left open in this thread (SQLite in memory is
    never closed), which pytest-django then refuses, whatever the order of the tests."""
    if request.node.get_closest_marker("django_db") is not None or any(
        name in request.fixturenames for name in ("db", "transactional_db", "django_db_setup")
    ):
        yield
        return
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


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


# ---------------------------------------------------------------- live servers


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaTree:
    return build_media_tree(tmp_path_factory.mktemp("live-media"))


@pytest.fixture(scope="session")
def server_pool(media: MediaTree, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    pool = ServerPool(media, tmp_path_factory.mktemp("live-logs"))
    yield pool
    pool.close()


@pytest.fixture(scope="session", params=ALL_SERVERS)
def server(request: pytest.FixtureRequest, server_pool: ServerPool) -> LiveServer:
    return server_pool.get(request.param)


@pytest.fixture(scope="session", params=ASGI_SERVERS)
def asgi_server(request: pytest.FixtureRequest, server_pool: ServerPool) -> LiveServer:
    return server_pool.get(request.param)


@pytest.fixture(scope="session", params=PATCHED_SERVERS)
def patched_server(request: pytest.FixtureRequest, server_pool: ServerPool) -> LiveServer:
    return server_pool.get(request.param)


@pytest.fixture
def no_tracebacks_in_server_logs(server_pool: ServerPool) -> Iterator[None]:
    """Fail a test after which a server logged a traceback (a 500, an ASGI error)."""
    for running in server_pool.running():
        running.new_log()
    yield
    for running in server_pool.running():
        output = running.new_log()
        if "Traceback" in output or "Internal Server Error" in output:
            pytest.fail(f"{running.name} logged an error:\n{output[-6000:]}")
