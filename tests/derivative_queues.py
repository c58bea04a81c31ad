"""A derivative site whose misses go to a task queue: web servers, a worker, one media tree.

Shared by tests/test_derivative_celery.py and tests/test_derivative_tasks.py: the
servers (:mod:`tests.servers`, uvicorn) and the worker (:mod:`tests.queues`) run
``tests.derivatives_site.settings`` with the same environment, so they share the
media root, the derivative root (the "shared derivative storage") and the lock files.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from fileresponse.derivatives.remote import RECORDS
from fileresponse.derivatives.signing import signed_path
from fileresponse.derivatives.spec import parse_spec
from tests import images
from tests.servers import SERVER_KINDS, LiveServer, MediaTree

SPEC = "160x120 fill png"
#: A command that takes a while, then writes its input: the slow run a worker is killed in.
SLOW_COMMANDS = {
    "slow": {
        "argv": ["sh", "-c", 'sleep 2; exec cat "$0"', "{input}"],
        "formats": {"png": "image/png"},
        "timeout": 30,
    }
}


@dataclass
class QueueSite:
    """The directories and environment of one site; servers started by :meth:`server`."""

    base: Path
    environ: dict[str, str]
    servers: list[LiveServer] = field(default_factory=list)

    @property
    def media_root(self) -> Path:
        return self.base / "media"

    @property
    def derivatives(self) -> Path:
        return self.base / "derivatives"

    def source(self, size: tuple[int, int] = (640, 480)) -> str:
        name = f"photos/queued-{secrets.token_hex(4)}.jpg"
        (self.media_root / "photos").mkdir(parents=True, exist_ok=True)
        (self.media_root / name).write_bytes(images.jpeg(size))
        return name

    def records(self) -> list[dict[str, Any]]:
        """The task records the worker and web processes wrote (``.tasks/*.json``)."""
        directory = self.derivatives / RECORDS
        if not directory.is_dir():
            return []
        return [json.loads(path.read_bytes()) for path in sorted(directory.glob("*.json"))]

    def stored(self) -> list[Path]:
        """Every file under the derivative root but the records, locks and manifests."""
        return [
            path
            for path in self.derivatives.rglob("*")
            if path.is_file()
            and RECORDS not in path.parts
            and ".locks" not in path.parts
            and not path.name.endswith(".json")
        ]

    def server(self, monkeypatch: pytest.MonkeyPatch) -> LiveServer:
        for key, value in self.environ.items():
            monkeypatch.setenv(key, value)
        media = MediaTree(root=self.media_root, outside=self.base / "outside", files={})
        server = LiveServer(
            SERVER_KINDS["uvicorn-patched"],
            media,
            self.base / f"server-{len(self.servers)}.log",
        )
        self.servers.append(server)
        server.start()
        return server


def derivative_url(source: str, spec: str = SPEC) -> str:
    return "/derivatives/" + signed_path(source, parse_spec(spec))


@contextmanager
def queue_site(base: Path, settings: Mapping[str, Any], **environ: str) -> Iterator[QueueSite]:
    """A site with ``settings`` (``FILERESPONSE`` keys) over the derivative root on disk."""
    (base / "media").mkdir(parents=True, exist_ok=True)
    (base / "outside").mkdir(exist_ok=True)
    site = QueueSite(
        base,
        {
            "DJANGO_SETTINGS_MODULE": "tests.derivatives_site.settings",
            "FILERESPONSE_TEST_MEDIA_ROOT": str(base / "media"),
            "FILERESPONSE_TEST_DERIVATIVES_ROOT": str(base / "derivatives"),
            "FILERESPONSE_TEST_LOCK_DIR": str(base / "locks"),
            "FILERESPONSE_TEST_SETTINGS": json.dumps(dict(settings)),
            "FILERESPONSE_TEST_URLCONF": "tests.derivatives_site.queue_urls",
            **environ,
        },
    )
    with ExitStack() as stack:
        stack.callback(lambda: [server.stop() for server in site.servers])
        yield site


async def _herd(servers: list[LiveServer], url: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    clients = [
        httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=60) for server in servers
    ]
    try:
        return list(
            await asyncio.gather(
                *(clients[index % len(clients)].get(url) for index in range(count))
            )
        )
    finally:
        for client in clients:
            await client.aclose()


def herd(servers: list[LiveServer], url: str, count: int = 100) -> list[httpx.Response]:
    """``count`` concurrent requests for ``url``, spread evenly over ``servers``."""
    return asyncio.run(_herd(servers, url, count))


def check_image(response: httpx.Response, size: tuple[int, int] = (160, 120)) -> None:
    assert response.status_code == 200, response.text[:500]
    assert images.decode(response.content).size == size


def kill_mid_task(site: QueueSite, worker: Any, server: LiveServer, source: str) -> int:
    """Kill ``worker`` while it runs the slow ``run=slow png`` derivative of ``source``.

    The request waiting for it gets ``503`` with ``Retry-After`` and nothing is stored;
    the worker is started again and the next request is served the derivative (the
    record's pid is the new worker's). Returns the killed worker's pid.
    """
    url = derivative_url(source, "run=slow png")
    first: list[httpx.Response] = []
    request = threading.Thread(target=lambda: first.extend(herd([server], url, 1)))
    request.start()
    deadline = time.monotonic() + 15
    while not any(record.get("state") == "running" for record in site.records()):
        assert time.monotonic() < deadline, "the worker did not start the slow command"
        time.sleep(0.05)
    killed = int(worker.pid)
    worker.kill()
    request.join(timeout=30)
    (response,) = first
    assert response.status_code == 503
    assert "retry-after" in response.headers
    assert site.stored() == [], "nothing half-written under the derivative's name"
    worker.start()
    (served,) = herd([server], url, 1)
    assert served.status_code == 200, served.text[:300]
    assert served.content == (site.media_root / source).read_bytes()
    (record,) = site.records()
    assert record["pid"] == worker.pid != killed
    return killed
