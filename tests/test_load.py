"""Load on real servers, in short: slow clients on each ASGI server, 500 connections on gunicorn.

The same code as ``python bench/load.py slow-clients`` and ``... connections`` (its
docstring tells what they do), with shorter runs: 200 slow clients for 4 s on each of
uvicorn, gunicorn with uvicorn workers and granian (about 8 s each), and 500 keep-alive
connections for 8 s on gunicorn with uvicorn workers (about 13 s). Each test prints its
figures as JSON.

Bounds asserted:

- slow clients: every client connected and still open at the end; RSS growth of the
  serving process under 100 MiB (granian: 320 MiB, see below); small-file p99 under
  500 ms, no small-file error;
  open descriptors back to the baseline (+10) within 10 s of the clients closing;
- connections: zero errors (status and bytes of every response checked); derivative
  URLs all cache hits; RSS growth under 150 MiB; descriptors back to the baseline.

granian holds about 1 MiB per stalled connection (its HTTP/1 buffer of 408 KiB, and about
eight 64 KiB chunks the application has sent), against about 0.1 MiB under uvicorn, so
its bound is looser: what it must stay far from is a whole 10 MiB file per client.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = [pytest.mark.live, pytest.mark.slow]

pytest.importorskip("PIL")
pytest.importorskip("psutil")

SLOW_CLIENTS = 200
SLOW_SECONDS = 4.0
RSS_GROWTH_MIB = {"uvicorn-patched": 100, "gunicorn-uvicorn": 100, "granian": 320}
CONNECTIONS = 500
CONNECTION_SECONDS = 8.0


def _load_module() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "bench" / "load.py"
    spec = importlib.util.spec_from_file_location("fileresponse_bench_load", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


load = _load_module()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> object:
    return load.build_site(tmp_path_factory.mktemp("load"))


def _no_tracebacks(log: str) -> None:
    assert "Traceback" not in log, log[-6000:]


@pytest.mark.parametrize("server_name", load.SLOW_SERVERS)
def test_slow_clients(site: object, server_name: str) -> None:
    with load.running_server(site, server_name) as server:
        result = load.slow_clients(
            server, site, clients=SLOW_CLIENTS, duration=SLOW_SECONDS, small_rate=20.0
        )
        log = server.log_tail(200_000)
    print(json.dumps(result, indent=2))

    assert result["slow"]["connected"] == SLOW_CLIENTS, result["slow"]
    assert result["slow"]["open_at_end"] == SLOW_CLIENTS, result["slow"]
    assert result["fds"]["peak"] >= result["fds"]["before"] + SLOW_CLIENTS, "clients were served"
    assert result["rss_growth_mib"] < RSS_GROWTH_MIB[server_name], result["rss_mib"]
    assert result["small_errors"] == {}
    assert result["small"]["requests"] >= SLOW_SECONDS * 20 * 0.9
    assert result["small"]["p99_ms"] < 500, result["small"]
    assert result["fds"]["settled_in_s"] is not None, result["fds"]
    _no_tracebacks(log)


def test_many_connections(site: object) -> None:
    with load.running_server(site, load.CONNECTIONS_SERVER) as server:
        result = load.many_connections(
            server, site, connections=CONNECTIONS, duration=CONNECTION_SECONDS
        )
        log = server.log_tail(200_000)
    print(json.dumps(result, indent=2))

    assert result["errors_total"] == 0, result["error_examples"]
    assert result["requests"] >= CONNECTIONS * 2, "every connection got answers"
    assert set(result["by_kind"]) == {
        "derivative",
        "file",
        "file-1MiB",
        "multipart",
        "not-modified",
        "range",
    }
    assert result["derivatives_generated_during_load"] == 0, "derivative URLs were all hits"
    assert result["rss_growth_mib"] < 150, result["rss_mib"]
    assert result["fds"]["settled_in_s"] is not None, result["fds"]
    _no_tracebacks(log)
