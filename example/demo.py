#!/usr/bin/env python
"""``make demo``: the example project and what its mode needs, stopped together by Ctrl-C.

A development helper, not in the package. It migrates, writes the sample media,
collects the static files, then runs, each in its own session:

- with ``STORAGE=minio`` or ``queued`` and ``MINIO_ENDPOINT`` on this machine with
  nothing listening there: the development S3 server (``tests/s3server.py``);
- with ``--celery``: a ``redis-server`` on a free loopback port (or on the one of
  ``CELERY_BROKER_URL``, when set and free) and a Celery worker (``celery -A example
  worker``), with ``DERIVATIVES_EXECUTOR=celery``;
- gunicorn with the library's worker (``fileresponse.workers.UvicornWorker``), its
  access log on the terminal.

Ctrl-C (or SIGTERM) stops the web server, then the worker, Redis and S3, in that order.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

EXAMPLE = Path(__file__).resolve().parent
REPO_ROOT = EXAMPLE.parent
sys.path[:0] = [str(EXAMPLE), str(REPO_ROOT)]

from example.config import load_config  # noqa: E402  (the example's settings.ini reader)

LOOPBACK = ("127.0.0.1", "localhost")
STOP_TIMEOUT = 10.0


class Stop(Exception):
    """Ctrl-C or SIGTERM: stop everything, quietly."""


def _stop_signal(signum: int, frame: FrameType | None) -> None:
    raise Stop


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


class Processes:
    """The started processes, stopped in the reverse order of their start."""

    def __init__(self) -> None:
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            command, cwd=EXAMPLE, env=env, stdin=subprocess.DEVNULL, start_new_session=True
        )
        self.started.append((name, process))
        return process

    def exited(self) -> str | None:
        return next((name for name, process in self.started if process.poll() is not None), None)

    def stop(self) -> None:
        for name, process in reversed(self.started):
            if process.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in {STOP_TIMEOUT:g} s: killed", file=sys.stderr)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_for(host: str, port: int, what: str, processes: Processes) -> None:
    deadline = time.monotonic() + 30
    while not listening(host, port):
        exited = processes.exited()
        if exited or time.monotonic() > deadline:
            raise SystemExit(f"{exited or what} did not start")
        time.sleep(0.05)


@contextlib.contextmanager
def s3_server(endpoint: str, access_key: str, secret_key: str, bucket: str) -> Iterator[None]:
    """The suite's S3 server on ``endpoint`` unless something listens there already."""
    host, _, port = endpoint.rpartition(":")
    if host not in LOOPBACK or not port.isdigit() or listening(host, int(port)):
        yield
        return
    from tests.s3server import JuiceFSGateway  # development helper, not installed

    workdir = EXAMPLE / "s3"
    workdir.mkdir(exist_ok=True)
    gateway = JuiceFSGateway(workdir, access_key=access_key, secret_key=secret_key, port=int(port))
    try:
        gateway.start()
        gateway.make_bucket(bucket)
        print(f"S3 server on {gateway.url}, bucket {bucket!r}")
        yield
    finally:
        gateway.close()


def redis_command(url: str) -> tuple[list[str] | None, str]:
    """The ``redis-server`` command for the broker (``None``: one answers there) and its URL."""
    if not url:
        port = free_port()
        url = f"redis://127.0.0.1:{port}/0"
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if parts.scheme != "redis" or host not in LOOPBACK or listening(host, port):
        return None, url
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit(
            "redis-server is needed for the Celery mode (apt-get install redis-server)"
        )
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ], url


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=EXAMPLE,
        env=env,
        check=True,
        start_new_session=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--celery", action="store_true", help="Redis, a Celery worker, and Celery")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    args = parser.parse_args(argv)

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO_ROOT), env.get("PYTHONPATH"))))
    signal.signal(signal.SIGINT, _stop_signal)
    signal.signal(signal.SIGTERM, _stop_signal)
    processes = Processes()
    config = load_config(env)
    minio = config.minio
    try:
        with contextlib.ExitStack() as stack:
            if config.storage in ("minio", "queued"):
                stack.enter_context(
                    s3_server(minio.endpoint, minio.access_key, minio.secret_key, minio.bucket)
                )
            # Run first on the way out: the processes stop before the S3 server.
            stack.callback(processes.stop)
            stack.callback(_ignore_stop_signals)
            if args.celery:
                command, env["CELERY_BROKER_URL"] = redis_command(config.celery_broker_url or "")
                env["DERIVATIVES_EXECUTOR"] = "celery"
                if command is not None:
                    processes.start("redis-server", command, env)
                    parts = urlsplit(env["CELERY_BROKER_URL"])
                    wait_for(parts.hostname or "", parts.port or 6379, "redis-server", processes)
                print(f"Celery broker {env['CELERY_BROKER_URL']}")
            manage(env, "migrate", "--no-input", "--verbosity", "0")
            manage(env, "prepare_media")
            manage(env, "collectstatic", "--no-input", "--verbosity", "0")
            manage(env, "ensure_demo_admin")
            if args.celery:
                processes.start(
                    "celery worker",
                    [
                        *(sys.executable, "-m", "celery", "-A", "example", "worker"),
                        *("--loglevel", "INFO", "--concurrency", "2", "--without-gossip"),
                    ],
                    env,
                )
            processes.start(
                "gunicorn",
                [
                    *(sys.executable, "-m", "gunicorn", "example.asgi:application"),
                    *("-k", "fileresponse.workers.UvicornWorker", "-w", str(args.workers)),
                    *("-b", f"{args.host}:{args.port}", "--access-logfile", "-"),
                    *("--graceful-timeout", "5"),
                ],
                env,
            )
            wait_for(args.host, args.port, "gunicorn", processes)
            print(f"\n  fileresponse demo: http://{args.host}:{args.port}/   (Ctrl-C stops it)\n")
            print("  admin: /admin/ as admin / admin\n", flush=True)
            while (exited := processes.exited()) is None:
                time.sleep(0.2)
            print(f"{exited} exited", file=sys.stderr)
            return 1
    except Stop:
        return 0
    except subprocess.CalledProcessError as error:
        return error.returncode or 1


def _ignore_stop_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
