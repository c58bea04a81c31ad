"""The threads lent to Django's requests (``fileresponse.threads.RequestThreads``).

Through real servers: under the patched handler each request's sync code (a
``request_started`` receiver, a sync view) runs in one thread, the thread is
reused by the next requests, and concurrent requests get threads of their
own; Django's stock handler starts a new thread per request. In process: a
thread whose call outlived its request is not lent again, the number kept is
bounded, and a forked process never uses its parent's threads.
"""

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import override_settings

from fileresponse import threads as threads_module
from fileresponse.threads import RequestThreads, request_threads
from tests import rawhttp
from tests.servers import LiveServer, ServerPool

pytestmark = pytest.mark.usefixtures("no_tracebacks_in_server_logs")


def thread_of(server: LiveServer, sleep: float = 0) -> dict:
    response = rawhttp.request(
        server.host, server.port, "GET", f"/request-thread?sleep={sleep}", None
    )
    assert response.status == 200, response.body[:300]
    return json.loads(response.body)


@pytest.fixture(scope="module", params=["uvicorn-patched", "gunicorn-sendfile"])
def patched(request: pytest.FixtureRequest, server_pool: ServerPool) -> LiveServer:
    return server_pool.get(request.param)


@pytest.mark.live
def test_a_request_keeps_one_thread_and_the_next_requests_reuse_it(patched: LiveServer) -> None:
    thread_of(patched)  # loads the URLconf, which connects the request_started receiver
    seen = [thread_of(patched) for _ in range(20)]
    assert all(answer["started_here"] for answer in seen), seen
    assert len({answer["thread"] for answer in seen}) <= 2, seen
    assert max(answer["requests_in_thread"] for answer in seen) >= 10, seen


@pytest.mark.live
def test_concurrent_requests_run_in_threads_of_their_own(patched: LiveServer) -> None:
    thread_of(patched)
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: thread_of(patched, sleep=0.5), range(4)))
    elapsed = time.monotonic() - started
    assert len({answer["thread"] for answer in answers}) == 4, answers
    assert all(answer["started_here"] for answer in answers), answers
    assert elapsed < 1.8, f"4 requests holding their thread 0.5 s took {elapsed:.2f} s"


@pytest.mark.live
def test_the_stock_handler_starts_a_thread_per_request(server_pool: ServerPool) -> None:
    stock = server_pool.get("uvicorn-stock")
    thread_of(stock)
    seen = [thread_of(stock) for _ in range(10)]
    assert all(answer["started_here"] for answer in seen), seen
    assert {answer["requests_in_thread"] for answer in seen} == {1}, seen


def _run_in(executor: ThreadPoolExecutor, function, *args):
    return executor.submit(function, *args).result(timeout=10)


def test_an_idle_thread_is_lent_again() -> None:
    threads = RequestThreads(keep=4)
    first = threads.lend()
    ident = _run_in(first, threading.get_ident)
    threads.give_back(first)
    again = threads.lend()
    assert again is first
    assert _run_in(again, threading.get_ident) == ident
    threads.give_back(again)


def test_a_thread_still_running_a_call_is_not_lent_again() -> None:
    threads = RequestThreads(keep=4)
    busy = threads.lend()
    release = threading.Event()
    future = busy.submit(release.wait, 10)
    threads.give_back(busy)  # the request ended (cancelled) while its call runs on
    other = threads.lend()
    assert other is not busy
    assert _run_in(other, lambda: 42) == 42
    release.set()
    future.result(timeout=10)
    threads.give_back(other)


def test_at_most_keep_threads_are_kept() -> None:
    threads = RequestThreads(keep=2)
    lent = [threads.lend() for _ in range(5)]
    for executor in lent:
        _run_in(executor, lambda: None)
        threads.give_back(executor)
    assert len({id(threads.lend()) for _ in range(5)} & {id(e) for e in lent}) == 2


def test_threads_of_another_process_are_not_lent(monkeypatch: pytest.MonkeyPatch) -> None:
    threads = RequestThreads(keep=4)
    parent = threads.lend()
    _run_in(parent, lambda: None)
    threads.give_back(parent)
    real_pid = os.getpid()
    monkeypatch.setattr(threads_module.os, "getpid", lambda: real_pid + 1)
    child = threads.lend()
    assert child is not parent
    monkeypatch.undo()
    for executor in (child, parent):
        executor.shutdown(wait=True)


def test_zero_request_threads_keeps_djangos_thread_per_request() -> None:
    with override_settings(FILERESPONSE={"REQUEST_THREADS": 0}):
        assert request_threads() is None
    with override_settings(FILERESPONSE={"REQUEST_THREADS": 3}):
        threads = request_threads()
        assert threads is not None
        assert threads.keep == 3


def test_closed_threads_end_and_those_given_back_later_too() -> None:
    threads = RequestThreads(keep=4)
    idle, lent = threads.lend(), threads.lend()
    for executor in (idle, lent):
        _run_in(executor, lambda: None)
    threads.give_back(idle)
    threads.close()
    assert idle._shutdown  # type: ignore[attr-defined]
    threads.give_back(lent)  # a request that ran across the change of settings
    assert lent._shutdown  # type: ignore[attr-defined]
    assert threads.lend() not in (idle, lent)


def test_a_change_of_settings_ends_the_old_idle_threads() -> None:
    with override_settings(FILERESPONSE={"REQUEST_THREADS": 2}):
        old = request_threads()
        assert old is not None
        executor = old.lend()
        _run_in(executor, lambda: None)
        old.give_back(executor)
    assert executor._shutdown  # type: ignore[attr-defined]
    assert request_threads() is not old
