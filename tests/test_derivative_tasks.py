"""``DERIVATIVES_EXECUTOR = "tasks"``: Django's Tasks framework with a worker in another process.

The database backend of ``django-tasks-db`` on a SQLite file that the uvicorn
servers (which enqueue) and its ``db_worker`` (which runs the tasks) share; one
row per task in that database, and the task record names the pid that made it.
Without Redis: the web processes poll the store.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("PIL")
pytest.importorskip("django_tasks_db")

from django.core.exceptions import ImproperlyConfigured

from tests.derivative_queues import (
    SLOW_COMMANDS,
    check_image,
    derivative_url,
    herd,
    kill_mid_task,
    queue_site,
)
from tests.fields import outcome_of
from tests.queues import (
    WorkerProcess,
    count_task_results,
    tasks_database,
    wait_for,
)

pytestmark = [pytest.mark.live]


def _settings(**more: object) -> dict[str, object]:
    return {"DERIVATIVES_EXECUTOR": "tasks", "DERIVATIVES_TIMEOUT": 20, **more}


def _environ(database: Path) -> dict[str, str]:
    return {"FILERESPONSE_TEST_DATABASE": str(database), "FILERESPONSE_TEST_TASKS": "db"}


def test_made_in_the_worker_one_task_for_a_herd_across_two_web_processes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tasks_worker_factory: Callable[..., WorkerProcess],
) -> None:
    database = tasks_database(tmp_path)
    with queue_site(tmp_path, _settings(), **_environ(database)) as site:
        worker = tasks_worker_factory(site.environ)
        worker.start()
        servers = [site.server(monkeypatch), site.server(monkeypatch)]
        responses = herd(servers, derivative_url(site.source((1600, 1200))), 100)
        for response in responses:
            check_image(response)
        assert len({response.content for response in responses}) == 1
        assert count_task_results(database) == {"SUCCESSFUL": 1}
        (record,) = site.records()
        assert record["made"] is True
        assert record["pid"] == worker.pid
        assert record["pid"] not in {server.pid for server in servers}
        assert worker.log().count("generated ") == 1, worker.log_tail()
        assert f"worker pid {worker.pid}) from 'default:photos/queued-" in worker.log()
        outcomes = [outcome_of(response.headers.get) for response in responses]
        assert outcomes.count("miss") == 1, "one request queued the task, the others waited"
        assert set(outcomes) <= {"miss", "collapsed", "hit"}


def test_a_worker_killed_mid_task_leaves_nothing_and_the_next_request_is_served(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tasks_worker_factory: Callable[..., WorkerProcess],
) -> None:
    database = tasks_database(tmp_path)
    settings = _settings(DERIVATIVES_TIMEOUT=5, DERIVATIVES_COMMANDS=SLOW_COMMANDS)
    with queue_site(tmp_path, settings, **_environ(database)) as site:
        worker = tasks_worker_factory(site.environ)
        worker.start()
        server = site.server(monkeypatch)
        kill_mid_task(site, worker, server, site.source())
        # The killed task's row stays RUNNING (its worker died); the next one succeeded.
        assert count_task_results(database) == {"RUNNING": 1, "SUCCESSFUL": 1}


def test_no_wait_answers_503_with_retry_after_then_serves(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tasks_worker_factory: Callable[..., WorkerProcess],
) -> None:
    database = tasks_database(tmp_path)
    settings = _settings(DERIVATIVES_REMOTE_WAIT=False)
    with queue_site(tmp_path, settings, **_environ(database)) as site:
        server = site.server(monkeypatch)
        url = derivative_url(site.source())
        answers = herd([server], url, 5)
        assert {answer.status_code for answer in answers} == {503}
        assert all(int(answer.headers["retry-after"]) >= 1 for answer in answers)
        assert count_task_results(database) == {"READY": 1}
        worker = tasks_worker_factory(site.environ)
        worker.start()
        wait_for(lambda: bool(site.stored()), 20, "the worker to make the derivative")
        (served,) = herd([server], url, 1)
        check_image(served)
        assert count_task_results(database) == {"SUCCESSFUL": 1}


def test_tasks_missing_fails_the_checks_naming_the_extra(
    settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fileresponse.checks import check_derivatives
    from fileresponse.derivatives import executor

    # As if neither Django 6's django.tasks nor the backport were installed.
    monkeypatch.setitem(sys.modules, "django.tasks", None)
    monkeypatch.setitem(sys.modules, "django_tasks", None)
    monkeypatch.delitem(sys.modules, "fileresponse.derivatives.tasks_executor", raising=False)
    settings.FILERESPONSE = {"DERIVATIVES_EXECUTOR": "tasks"}  # type: ignore[attr-defined]
    try:
        messages = [message for message in check_derivatives() if message.id.endswith("E023")]
        assert len(messages) == 1
        assert "pip install 'fileresponse[tasks]'" in messages[0].msg
        with pytest.raises(ImproperlyConfigured, match=r"fileresponse\[tasks\]"):
            executor.get_executor()
    finally:
        executor.reset_executor()
