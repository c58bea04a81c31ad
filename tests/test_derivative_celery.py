"""``DERIVATIVES_EXECUTOR = "celery"``: a real Redis, a real Celery worker, real web servers.

The worker (``--pool=solo``: the task runs in the process whose pid we know) and
the uvicorn servers share the media and derivative roots on disk; the worker's
log has one ``received`` line per task, and the task record the pid that made it.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("PIL")
pytest.importorskip("celery")
pytest.importorskip("redis")

from django.core.exceptions import ImproperlyConfigured

from fileresponse.conf import validate
from fileresponse.derivatives.remote import DerivativeTask, make_derivative
from fileresponse.derivatives.signing import InvalidSignature
from tests.derivative_queues import (
    SLOW_COMMANDS,
    check_image,
    derivative_url,
    herd,
    kill_mid_task,
    queue_site,
)
from tests.fields import outcome_of
from tests.queues import WorkerProcess, wait_for

pytestmark = [pytest.mark.live]

RECEIVED = re.compile(r"Task fileresponse\.derivatives\.make\[[0-9a-f-]+\] received")


def _settings(redis_url: str, **more: object) -> dict[str, object]:
    return {
        "DERIVATIVES_EXECUTOR": "celery",
        "DERIVATIVES_CELERY_APP": "tests.project.celery.app",
        "DERIVATIVES_REDIS_URL": redis_url,
        "DERIVATIVES_TIMEOUT": 20,
        **more,
    }


def _tasks_received(worker: WorkerProcess) -> int:
    return len(RECEIVED.findall(worker.log()))


def test_made_in_the_worker_not_in_the_web_process(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    celery_worker_factory: Callable[..., WorkerProcess],
) -> None:
    with queue_site(
        tmp_path, _settings(redis_url), FILERESPONSE_TEST_CELERY_BROKER=redis_url
    ) as site:
        worker = celery_worker_factory(site.environ)
        worker.start()
        server = site.server(monkeypatch)
        source = site.source()
        (response,) = herd([server], derivative_url(source), 1)
        check_image(response)
        (record,) = site.records()
        assert record["state"] == "done"
        assert record["made"] is True
        assert record["pid"] == worker.pid != server.pid
        assert _tasks_received(worker) == 1
        assert "generated " not in server.log_tail(100_000)
        # The worker's log has the one line of the derivative made, in the worker.
        (line,) = [line for line in worker.log().splitlines() if "generated " in line]
        assert re.search(
            rf"generated \S+/160x120_fill\.png in [0-9.]+ ms \(.+, {len(response.content)} "
            rf"bytes, worker pid {worker.pid}\) from 'default:{source}' by '160x120 fill png'",
            line,
        ), line
        # The web process waited for it: a miss, stored; timed as the wait.
        assert outcome_of(response.headers.get) == "miss"
        # A hit: served by the web process, no task.
        (again,) = herd([server], derivative_url(source), 1)
        assert again.content == response.content
        assert outcome_of(again.headers.get) == "hit"
        assert _tasks_received(worker) == 1


def test_one_task_for_a_herd_across_two_web_processes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    celery_worker_factory: Callable[..., WorkerProcess],
) -> None:
    with queue_site(
        tmp_path, _settings(redis_url), FILERESPONSE_TEST_CELERY_BROKER=redis_url
    ) as site:
        worker = celery_worker_factory(site.environ)
        worker.start()
        servers = [site.server(monkeypatch), site.server(monkeypatch)]
        responses = herd(servers, derivative_url(site.source((1600, 1200))), 100)
        for response in responses:
            check_image(response)
        assert len({response.content for response in responses}) == 1
        outcomes = [outcome_of(response.headers.get) for response in responses]
        assert outcomes.count("miss") == 1, "one request queued the task, the others waited"
        assert set(outcomes) <= {"miss", "collapsed", "hit"}
        assert _tasks_received(worker) == 1, worker.log_tail()
        assert worker.log().count("generated ") == 1
        for server in servers:
            assert "Traceback" not in server.log_tail(100_000)


def test_a_worker_killed_mid_task_leaves_nothing_and_the_next_request_is_served(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    celery_worker_factory: Callable[..., WorkerProcess],
) -> None:
    settings = _settings(redis_url, DERIVATIVES_TIMEOUT=5, DERIVATIVES_COMMANDS=SLOW_COMMANDS)
    with queue_site(tmp_path, settings, FILERESPONSE_TEST_CELERY_BROKER=redis_url) as site:
        worker = celery_worker_factory(site.environ)
        worker.start()
        server = site.server(monkeypatch)
        kill_mid_task(site, worker, server, site.source())
        assert len(RECEIVED.findall(worker.log_since_start())) == 1


def test_no_wait_answers_503_with_retry_after_then_serves(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    celery_worker_factory: Callable[..., WorkerProcess],
) -> None:
    settings = _settings(redis_url, DERIVATIVES_REMOTE_WAIT=False)
    with queue_site(tmp_path, settings, FILERESPONSE_TEST_CELERY_BROKER=redis_url) as site:
        server = site.server(monkeypatch)
        url = derivative_url(site.source())
        # No worker yet: each request answers at once, and the task is queued once.
        started = time.monotonic()
        answers = herd([server], url, 5)
        assert time.monotonic() - started < 5
        assert {answer.status_code for answer in answers} == {503}
        assert all(int(answer.headers["retry-after"]) >= 1 for answer in answers)
        worker = celery_worker_factory(site.environ)
        worker.start()
        wait_for(lambda: bool(site.stored()), 20, "the worker to make the derivative")
        (served,) = herd([server], url, 1)
        check_image(served)
        assert _tasks_received(worker) == 1, worker.log_tail()


# ---------------------------------------------------------------- configuration


def test_a_task_not_signed_by_this_site_is_refused() -> None:
    task = DerivativeTask.signed("default", "a.jpg", "100x100", "webp", "d/a.webp")
    forged = {**task.arguments(), "source": "../../etc/passwd"}
    with pytest.raises(InvalidSignature):
        make_derivative(forged)
    with pytest.raises(InvalidSignature):
        make_derivative({"storage": "default"})


def test_bad_settings_are_named() -> None:
    assert validate({"DERIVATIVES_QUEUE": "no spaces please"}) == [
        "DERIVATIVES_QUEUE must be a queue name (1..100 of A-Z, a-z, 0-9, . _ : -)"
    ]
    assert validate({"DERIVATIVES_REMOTE_WAIT": "no"}) == [
        "DERIVATIVES_REMOTE_WAIT must be bool, not str"
    ]
    assert validate({"DERIVATIVES_RETRIES": 0}) == []
    assert validate({"DERIVATIVES_RETRIES": -1}) == ["DERIVATIVES_RETRIES must be positive, not -1"]


def test_celery_missing_fails_the_checks_naming_the_extra(
    settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fileresponse.checks import check_derivatives
    from fileresponse.derivatives import executor

    monkeypatch.setitem(sys.modules, "celery", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "fileresponse.derivatives.celery_executor", raising=False)
    settings.FILERESPONSE = {"DERIVATIVES_EXECUTOR": "celery"}  # type: ignore[attr-defined]
    try:
        messages = [message for message in check_derivatives() if message.id.endswith("E023")]
        assert len(messages) == 1
        assert "pip install 'fileresponse[celery]'" in messages[0].msg
        with pytest.raises(ImproperlyConfigured, match=r"fileresponse\[celery\]"):
            executor.get_executor()
    finally:
        executor.reset_executor()


def test_a_celery_app_that_cannot_be_imported_is_named(settings: object) -> None:
    from fileresponse.derivatives import executor

    settings.FILERESPONSE = {  # type: ignore[attr-defined]
        "DERIVATIVES_EXECUTOR": "celery",
        "DERIVATIVES_CELERY_APP": "tests.project.no_such_module.app",
    }
    try:
        with pytest.raises(ImproperlyConfigured, match="DERIVATIVES_CELERY_APP"):
            executor.get_executor()
    finally:
        executor.reset_executor()


def test_transient_storage_errors_are_tried_again_with_backoff() -> None:
    from fileresponse.conf import get_config
    from fileresponse.derivatives.exceptions import CommandFailed
    from fileresponse.derivatives.remote import _retrying

    calls: list[float] = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionResetError("the storage hung up")
        return "stored"

    assert _retrying(flaky, get_config(DERIVATIVES_RETRIES=3)) == "stored"
    assert len(calls) == 3
    assert calls[2] - calls[1] > calls[1] - calls[0] >= 0.2  # growing pauses
    calls.clear()
    with pytest.raises(ConnectionResetError):
        _retrying(flaky, get_config(DERIVATIVES_RETRIES=1))
    assert len(calls) == 2

    def failing() -> None:
        calls.append(time.monotonic())
        raise CommandFailed("exit 1")

    calls.clear()
    with pytest.raises(CommandFailed):  # a processing failure is not the storage's
        _retrying(failing, get_config())
    assert len(calls) == 1
