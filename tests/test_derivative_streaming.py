"""Streamed derivatives through a real server: a registered command's output while it runs.

The commands are one small Python script (written here) that copies its
source to stdout in pieces with a pause between them, and appends its pid to
a file per command (one line per run). uvicorn serves tests.derivatives_site
with those commands (``FILERESPONSE_TEST_SETTINGS``).
"""

from __future__ import annotations

import asyncio
import glob
import json
import logging
import os
import re
import secrets
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

psutil = pytest.importorskip("psutil")

from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.files.base import ContentFile  # noqa: E402
from django.core.files.storage import default_storage, storages  # noqa: E402

from fileresponse.checks import check_settings  # noqa: E402
from fileresponse.conf import get_config  # noqa: E402
from fileresponse.derivatives import streaming as streaming_module  # noqa: E402
from fileresponse.derivatives.diagnostics import diagnostic_headers  # noqa: E402
from fileresponse.derivatives.exceptions import (  # noqa: E402
    CommandFailed,
    ProcessingUnavailable,
    SpecMismatch,
    UnsupportedFormat,
)
from fileresponse.derivatives.keys import MANIFEST_NAME  # noqa: E402
from fileresponse.derivatives.pipeline import (  # noqa: E402
    Obtained,
    Streaming,
    clear_negative_cache,
    obtain_derivative,
    obtain_or_stream,
)
from fileresponse.derivatives.processors import JobInput, Output, processor_for  # noqa: E402
from fileresponse.derivatives.processors.command import CommandProcessor  # noqa: E402
from fileresponse.derivatives.signing import signed_path  # noqa: E402
from fileresponse.derivatives.spec import InvalidSpec, parse_spec  # noqa: E402
from tests import rawhttp  # noqa: E402
from tests.fields import description, milliseconds, outcome_of  # noqa: E402
from tests.servers import SERVER_KINDS, LiveServer, MediaTree  # noqa: E402

PIECES = 8
PAUSE = 0.25
SOURCE_BYTES = 8 * 32 * 1024
TIMEOUT = 1.5

SCRIPT = f"""
import os, subprocess, sys, time

mode, runs, source = sys.argv[1:4]
with open(runs, "a") as file:
    file.write(f"{{os.getpid()}}\\n")
with open(runs) as file:
    count = len(file.read().split())
data = sys.stdin.buffer.read() if source == "-" else open(source, "rb").read()
out = sys.stdout.buffer
if mode == "hang":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(runs + ".pids", "w") as file:
        file.write(f"{{os.getpid()}} {{child.pid}}")
    out.write(data[:1000])
    out.flush()
    time.sleep(600)
size = len(data) // {PIECES} + 1
for piece in range({PIECES}):
    out.write(data[piece * size : (piece + 1) * size])
    out.flush()
    if mode == "failonce" and piece == 3 and count == 1:
        sys.exit(3)
    time.sleep({PAUSE})
"""

MODES = {
    "first": "copy",
    "concurrent": "copy",
    "disconnect": "copy",
    "fromstdin": "copy",
    "failonce": "failonce",
    "hang": "hang",
}


@dataclass
class Site:
    server: LiveServer
    media: Path
    derivatives: Path
    runs: Path

    def runs_of(self, command: str) -> list[str]:
        path = self.runs / command
        return path.read_text().split() if path.exists() else []

    def source(self, name: str) -> bytes:
        data = secrets.token_bytes(SOURCE_BYTES)
        (self.media / name).write_bytes(data)
        return data

    def committed(self) -> list[Path]:
        return [
            path
            for path in self.derivatives.rglob("*")
            if path.is_file()
            and ".locks" not in path.parts
            and path.name != MANIFEST_NAME
            and not path.name.startswith(".")  # a run's temporary file
        ]

    def temporaries(self) -> list[Path]:
        return list(self.derivatives.rglob(".*.tmp"))


@contextmanager
def serving(root: Path, **settings: object) -> Iterator[Site]:
    """uvicorn on tests.derivatives_site with the commands of :data:`MODES` under ``root``."""
    media, outside, runs = root / "media", root / "outside", root / "runs"
    for directory in (media, outside, runs):
        directory.mkdir()
    script = root / "stream_script.py"
    script.write_text(SCRIPT)
    commands: dict[str, dict[str, Any]] = {
        name: {
            "argv": [sys.executable, str(script), mode, str(runs / name), "{input}"],
            "formats": {"png": "image/png"},
            "timeout": TIMEOUT if mode == "hang" else 30,
        }
        for name, mode in MODES.items()
    }
    commands["fromstdin"]["argv"][-1] = "-"
    commands["fromstdin"]["stdin"] = True
    table = {"DERIVATIVES_COMMANDS": commands, "DERIVATIVES_NEGATIVE_TTL": None, **settings}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_SETTINGS_MODULE", "tests.derivatives_site.settings")
        patch.setenv("FILERESPONSE_TEST_DERIVATIVES_ROOT", str(root / "derivatives"))
        patch.setenv("FILERESPONSE_TEST_LOCK_DIR", str(root / "locks"))
        patch.setenv("FILERESPONSE_TEST_SETTINGS", json.dumps(table))
        server = LiveServer(
            SERVER_KINDS["uvicorn-patched"],
            MediaTree(root=media, outside=outside, files={}),
            root / "server.log",
        )
        server.start()
        try:
            yield Site(server, media, root / "derivatives", runs)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with serving(tmp_path_factory.mktemp("streaming")) as running:
        yield running


def target(source_name: str, command: str) -> str:
    return "/derivatives/" + signed_path(source_name, parse_spec(f"run={command}"))


@dataclass
class Answer:
    head: str
    wire_body: bytes
    first_byte: float
    total: float

    @property
    def complete(self) -> bool:
        return self.wire_body.endswith(b"0\r\n\r\n")

    def parsed(self) -> rawhttp.RawResponse:
        return rawhttp.parse_response(
            self.head.encode("latin-1") + b"\r\n\r\n" + self.wire_body, "GET"
        )


def fetch(site: Site, path: str, *, stop_after: int | None = None) -> Answer:
    """GET ``path`` over a raw socket: seconds to the first body byte and to the close."""
    started = time.monotonic()
    request = rawhttp.build_request("GET", path, f"{site.server.host}:{site.server.port}")
    raw = bytearray()
    first_byte = 0.0
    with socket.create_connection((site.server.host, site.server.port), timeout=30) as sock:
        sock.sendall(request)
        while chunk := sock.recv(1 << 16):
            raw += chunk
            head_end = raw.find(b"\r\n\r\n")
            if not first_byte and head_end >= 0 and len(raw) > head_end + 4:
                first_byte = time.monotonic() - started
            if stop_after is not None and head_end >= 0 and len(raw) - head_end - 4 >= stop_after:
                break
    head, _, body = bytes(raw).partition(b"\r\n\r\n")
    return Answer(head.decode("latin-1"), body, first_byte, time.monotonic() - started)


def wait_for(condition: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"still false after {seconds}s")


def gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


@pytest.mark.live
def test_first_bytes_arrive_while_the_command_runs_then_a_stored_file(site: Site) -> None:
    data = site.source("first.bin")
    answer = fetch(site, target("first.bin", "first"))
    response = answer.parsed()
    assert response.status == 200, answer.head
    assert response.header("Transfer-Encoding") == "chunked"
    assert response.header("Content-Length") is None
    assert response.header("Cache-Control") == "no-store"
    assert response.header("Content-Type") == "image/png"
    assert response.body == data
    # Sent before the run ended: a miss not stored yet, timed to its first byte.
    assert outcome_of(response.header) == "streamed"
    assert description(response.header, "first-byte") == "command"
    assert milliseconds(response.header, "first-byte") < answer.first_byte * 1000
    command_time = PIECES * PAUSE
    print(f"\nfirst byte {answer.first_byte:.3f}s, whole body {answer.total:.3f}s")
    assert answer.first_byte < command_time / 4 < answer.total
    assert answer.total >= command_time * 0.8
    (committed,) = site.committed()
    assert committed.read_bytes() == data
    assert not site.temporaries()

    again = rawhttp.request(site.server.host, site.server.port, "GET", target("first.bin", "first"))
    assert again.status == 200
    assert again.header("Content-Length") == str(len(data))
    assert again.header("ETag")
    assert again.body == data
    assert outcome_of(again.header) == "hit"
    ranged = rawhttp.request(
        site.server.host,
        site.server.port,
        "GET",
        target("first.bin", "first"),
        {"Range": "bytes=100-199"},
    )
    assert ranged.status == 206
    assert ranged.body == data[100:200]
    assert outcome_of(ranged.header) == "hit"
    assert len(site.runs_of("first")) == 1
    (line,) = [line for line in site.server.log_tail(100_000).splitlines() if "first.bin" in line]
    assert re.search(
        rf"generated \S+ in [0-9.]+ ms \(streamed command first, {len(data)} bytes\) "
        r"from 'default:first\.bin' by 'run=first'",
        line,
    ), line


@pytest.mark.live
def test_ten_concurrent_requests_follow_one_run(site: Site) -> None:
    data = site.source("concurrent.bin")
    answers: list[Answer] = []
    lock = threading.Lock()
    start = threading.Barrier(10)

    def client(index: int) -> None:
        start.wait()
        time.sleep(index * 0.05)  # later clients join a run under way
        answer = fetch(site, target("concurrent.bin", "concurrent"))
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == 10
    assert all(answer.complete for answer in answers)
    assert {answer.parsed().body for answer in answers} == {data}
    assert len(site.runs_of("concurrent")) == 1
    outcomes = sorted(outcome_of(answer.parsed().header) or "" for answer in answers)
    assert outcomes == ["streamed"] + ["streamed-collapsed"] * 9, "later clients joined the run"


@pytest.mark.live
def test_a_command_reading_stdin(site: Site) -> None:
    data = site.source("stdin.bin")
    answer = fetch(site, target("stdin.bin", "fromstdin"))
    assert answer.complete
    assert answer.parsed().body == data


@pytest.mark.live
def test_a_failure_mid_stream_cuts_the_response_and_stores_nothing(site: Site) -> None:
    data = site.source("fail.bin")
    before = site.committed()
    answer = fetch(site, target("fail.bin", "failonce"))
    assert answer.head.startswith("HTTP/1.1 200"), answer.head
    assert answer.wire_body, "the first pieces were sent"
    assert not answer.complete, "a failed run must not end its response with the last chunk"
    assert site.committed() == before
    assert not site.temporaries()
    assert "exited with status 3" in site.server.log_tail(100_000)

    again = fetch(site, target("fail.bin", "failonce"))
    assert again.complete
    assert again.parsed().body == data
    assert len(site.runs_of("failonce")) == 2


@pytest.mark.live
def test_a_timeout_kills_the_process_group_and_stores_nothing(site: Site) -> None:
    site.source("hang.bin")
    before = site.committed()
    answer = fetch(site, target("hang.bin", "hang"))
    assert answer.head.startswith("HTTP/1.1 200"), answer.head
    assert not answer.complete
    assert TIMEOUT * 0.9 < answer.total < TIMEOUT + 5
    leader, child = map(int, (site.runs / "hang.pids").read_text().split())
    wait_for(lambda: gone(leader) and gone(child), 5)
    assert site.committed() == before
    assert not site.temporaries()


@pytest.mark.live
def test_the_run_completes_after_the_first_client_went_away(site: Site) -> None:
    data = site.source("disconnect.bin")
    cut = fetch(site, target("disconnect.bin", "disconnect"), stop_after=100)
    assert cut.head.startswith("HTTP/1.1 200")
    assert cut.total < PIECES * PAUSE / 2
    wait_for(lambda: any(path.read_bytes() == data for path in site.committed()))
    answer = rawhttp.request(
        site.server.host, site.server.port, "GET", target("disconnect.bin", "disconnect")
    )
    assert answer.header("Content-Length") == str(len(data))
    assert answer.body == data
    assert len(site.runs_of("disconnect")) == 1


@pytest.mark.live
def test_no_descriptor_of_a_run_stays_open(site: Site) -> None:
    """After the runs above (committed, failed, timed out, abandoned by a client)."""
    wait_for(lambda: not site_descriptors(site), 5)


def site_descriptors(site: Site) -> list[str]:
    """The server's open files in the derivative root or the source tree."""
    fd_dir = Path(f"/proc/{site.server.pid}/fd")
    targets = []
    for link in fd_dir.iterdir():
        try:
            targets.append(os.readlink(link))
        except FileNotFoundError:
            continue
    roots = (str(site.derivatives), str(site.media))
    return [target for target in targets if target.startswith(roots) and ".locks" not in target]


@pytest.mark.live
def test_with_abandon_the_run_ends_when_its_last_client_goes(tmp_path: Path) -> None:
    with serving(tmp_path, DERIVATIVES_STREAM_ABANDON=True) as abandoning:
        abandoning.source("abandon.bin")
        cut = fetch(abandoning, target("abandon.bin", "disconnect"), stop_after=100)
        assert cut.head.startswith("HTTP/1.1 200")
        (pid,) = map(int, abandoning.runs_of("disconnect"))
        wait_for(lambda: gone(pid), PIECES * PAUSE / 2)
        time.sleep(PIECES * PAUSE)  # the whole run's time: nothing is stored meanwhile
        assert not abandoning.committed()
        assert not abandoning.temporaries()
        log = abandoning.server.log_tail(100_000)
    assert "generated" not in log
    assert "Traceback" not in log


# ---------------------------------------------------------------- in this process


def stored_files(root: Path) -> list[Path]:
    """Every file under ``root`` but lock files."""
    return [path for path in root.rglob("*") if path.is_file() and ".locks" not in path.parts]


COPY = "import shutil, sys; shutil.copyfileobj(open(sys.argv[1], 'rb'), sys.stdout.buffer)"


@pytest.fixture
def in_process(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """Sources in MEDIA_ROOT and in memory; derivatives on disk; ``copy`` and ``fail`` commands."""
    media = tmp_path / "media"
    media.mkdir()
    settings.MEDIA_ROOT = str(media)
    settings.STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "memory": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    settings.FILERESPONSE = {
        "DERIVATIVES_ROOT": str(tmp_path / "derivatives"),
        "DERIVATIVES_SOURCE_STORAGES": ["default", "memory"],
        "DERIVATIVES_COMMANDS": {
            "copy": {"argv": [sys.executable, "-c", COPY, "{input}"], "formats": {"png": "x/y"}},
            "fail": {
                "argv": [sys.executable, "-c", "raise SystemExit(4)"],
                "formats": {"png": "x/y"},
            },
        },
    }
    clear_negative_cache()
    yield tmp_path / "derivatives"
    clear_negative_cache()


async def test_warm_awaits_a_streaming_run_to_its_end(in_process: Path) -> None:
    data = secrets.token_bytes(300_000)
    default_storage.save("a.bin", ContentFile(data))
    obtained = await obtain_derivative(default_storage, "default", "a.bin", parse_spec("run=copy"))
    obtained.stored.source.close()
    assert obtained.generated
    assert obtained.output == Output("png", "png", "x/y")
    assert (in_process / obtained.stored.name).read_bytes() == data
    again = await obtain_derivative(default_storage, "default", "a.bin", parse_spec("run=copy"))
    again.stored.source.close()
    assert not again.generated


async def test_a_streamed_miss_its_followers_and_the_hit_say_so(
    in_process: Path, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fileresponse.derivatives")
    slow = (
        "import sys, time; data = open(sys.argv[1], 'rb').read(); out = sys.stdout.buffer; "
        "out.write(data[:1000]); out.flush(); time.sleep(0.4); out.write(data[1000:])"
    )
    commands = {
        "slow": {"argv": [sys.executable, "-c", slow, "{input}"], "formats": {"png": "x/y"}}
    }
    settings.FILERESPONSE = {**settings.FILERESPONSE, "DERIVATIVES_COMMANDS": commands}
    data = secrets.token_bytes(5000)
    default_storage.save("h.bin", ContentFile(data))
    spec = parse_spec("run=slow")
    first = await obtain_or_stream(default_storage, "default", "h.bin", spec)
    second = await obtain_or_stream(default_storage, "default", "h.bin", spec)
    assert isinstance(first, Streaming)
    assert isinstance(second, Streaming)
    assert outcome_of(diagnostic_headers(first.provenance).get) == "streamed"
    assert outcome_of(diagnostic_headers(second.provenance).get) == "streamed-collapsed"
    for streaming in (first, second):
        assert b"".join([chunk async for chunk in streaming.body]) == data
    hit = await obtain_or_stream(default_storage, "default", "h.bin", spec)
    assert isinstance(hit, Obtained)
    hit.stored.source.close()
    assert outcome_of(diagnostic_headers(hit.provenance).get) == "hit"
    (line,) = [record.getMessage() for record in caplog.records if "generated" in record.msg]
    assert re.fullmatch(
        r"generated \S+/run-slow\.png in [0-9.]+ ms \(streamed command slow, 5000 bytes\) "
        r"from 'default:h\.bin' by 'run=slow'",
        line,
    ), line


async def test_a_store_elsewhere_gets_the_output_at_the_end(
    in_process: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote source is copied first; a remote store gets the output in one save,
    read from the temporary file in pieces (never the whole output in memory)."""
    from fileresponse.derivatives.store import DerivativeStore

    saved_as: list[type] = []
    save = DerivativeStore.save

    def recording_save(self: DerivativeStore, name: str, data: Any) -> None:
        saved_as.append(type(data))
        save(self, name, data)

    monkeypatch.setattr(DerivativeStore, "save", recording_save)
    settings.FILERESPONSE = {**settings.FILERESPONSE, "DERIVATIVES_STORAGE": "memory"}
    memory = storages["memory"]
    data = secrets.token_bytes(2 * 1024 * 1024)  # spooled to a file (beyond 1 MiB)
    memory.save("b.bin", ContentFile(data))
    small = secrets.token_bytes(1000)  # spooled in memory
    memory.save("c.bin", ContentFile(small))
    for name, expected in (("b.bin", data), ("c.bin", small)):
        streaming = await obtain_or_stream(memory, "memory", name, parse_spec("run=copy"))
        assert isinstance(streaming, Streaming)
        body = b"".join([chunk async for chunk in streaming.body])
        assert body == expected
        stored = await obtain_or_stream(memory, "memory", name, parse_spec("run=copy"))
        assert isinstance(stored, Obtained)
        stored.stored.source.close()
        assert memory.open(stored.stored.name).read() == expected
    assert saved_as
    assert saved_as[-1] is not bytes, "the output went as a file, not as bytes"
    assert not glob.glob(os.path.join(tempfile.gettempdir(), "fileresponse-derivative-*"))


LIMITS = (
    "import resource, sys, time; time.sleep(0.5); "
    "print(resource.getrlimit(resource.RLIMIT_AS)[0], resource.getrlimit(resource.RLIMIT_CPU)[0])"
)
HOG = "import time; time.sleep(0.5); block = bytearray(400 * 1024 * 1024); print(len(block))"


async def test_a_command_runs_within_its_resource_limits(in_process: Path, settings: Any) -> None:
    """``max_memory`` and ``max_cpu`` (RLIMIT_AS, RLIMIT_CPU) hold for the command it runs."""
    commands = {
        "limits": {
            "argv": [sys.executable, "-c", LIMITS],
            "formats": {"txt": "text/plain"},
            "max_memory": 300 * 1024 * 1024,
            "max_cpu": 7,
        },
        "hog": {
            "argv": [sys.executable, "-c", HOG],
            "formats": {"txt": "text/plain"},
            "max_memory": 300 * 1024 * 1024,
        },
    }
    settings.FILERESPONSE = {**settings.FILERESPONSE, "DERIVATIVES_COMMANDS": commands}
    default_storage.save("e.bin", ContentFile(b"x"))
    made = await obtain_derivative(default_storage, "default", "e.bin", parse_spec("run=limits"))
    made.stored.source.close()
    output = await asyncio.to_thread((in_process / made.stored.name).read_text)
    assert output.split() == [str(300 * 1024 * 1024), "7"]
    with pytest.raises(CommandFailed, match="exited with status"):
        await obtain_derivative(default_storage, "default", "e.bin", parse_spec("run=hog"))
    assert not await asyncio.to_thread(lambda: list(in_process.rglob("*.txt.*")))


async def test_a_failure_before_the_first_byte_is_an_error_status(in_process: Path) -> None:
    default_storage.save("d.bin", ContentFile(b"x"))
    with pytest.raises(CommandFailed, match="exited with status 4") as failure:
        await obtain_or_stream(default_storage, "default", "d.bin", parse_spec("run=fail"))
    assert failure.value.status_code == 502
    assert not stored_files(in_process)


# ---------------------------------------------------------------- the command table


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"Bad Name": {"argv": ["x"], "formats": {"png": "image/png"}}}, "a command name is"),
        ({"x": {"argv": "convert in out", "formats": {"png": "image/png"}}}, "list of str"),
        ({"x": {"argv": ["x", 1], "formats": {"png": "image/png"}}}, "list of str"),
        ({"x": {"argv": ["x"]}}, "['formats'] must map"),
        ({"x": {"argv": ["x"], "formats": {"png": "image/png"}, "shell": True}}, "unknown key"),
        ({"x": {"argv": ["x", "{path}"], "formats": {"png": "a/b"}}}, "unknown placeholder {path}"),
        ({"x": {"argv": ["x", "{width!r}"], "formats": {"png": "a/b"}}}, "no format or conversion"),
        ({"x": {"argv": ["x", "{"], "formats": {"png": "a/b"}}}, "write {{ and }}"),
        ({"x": {"argv": ["x"], "formats": {"png": "a/b"}, "timeout": 0}}, "positive number"),
        ({"x": {"argv": ["x"], "formats": {"png": "a/b"}, "stdin": "yes"}}, "True or False"),
        ("not a dict", "must be Mapping"),
    ],
)
def test_a_bad_command_table_fails_at_start_up(settings: Any, table: object, problem: str) -> None:
    settings.FILERESPONSE = {"DERIVATIVES_COMMANDS": table}
    with pytest.raises(ImproperlyConfigured, match=re.escape(problem)):
        get_config()
    messages = check_settings()
    assert [message.id for message in messages] == ["fileresponse.E031"] * len(messages)
    assert messages
    assert problem in messages[0].msg


def test_a_command_gets_validated_values_as_whole_arguments(settings: Any) -> None:
    argv = ["tool", "{input}", "-resize", "{width}x{height}", "-quality", "{quality}", "{format}:-"]
    settings.FILERESPONSE = {
        "DERIVATIVES_COMMANDS": {"tool": {"argv": argv, "formats": {"webp": "image/webp"}}}
    }
    processor, config = processor_for("any.name", parse_spec("run=tool")), get_config()
    assert isinstance(processor, CommandProcessor)
    spec = parse_spec(["run=tool 300x200 q=80", " rm -rf /"][0])
    processor.check(spec, config)
    output, varies = processor.choose_output(spec, "a b;$(x).jpg", None, config)
    assert (output, varies) == (Output("webp", "webp", "image/webp"), False)
    job = processor.job(spec, output, JobInput("/dev/fd/7"), config)
    assert processor.command(job).argv == (
        *("tool", "/dev/fd/7", "-resize", "300x200", "-quality", "80", "webp:-"),
    )
    with pytest.raises(InvalidSpec, match="needs a quality"):
        processor.check(parse_spec("run=tool 300x200"), config)
    with pytest.raises(InvalidSpec, match="unknown command 'other'"):
        processor.check(parse_spec("run=other"), config)
    with pytest.raises(UnsupportedFormat):
        processor.choose_output(parse_spec("run=tool 300x200 png"), "a.jpg", None, config)


async def test_runs_are_bounded_per_process(in_process: Path, settings: Any) -> None:
    slow = "import sys, time; sys.stdout.write('x'); sys.stdout.flush(); time.sleep(30)"
    settings.FILERESPONSE = {
        **settings.FILERESPONSE,
        "DERIVATIVES_MAX_PENDING": 1,
        "DERIVATIVES_STREAM_ABANDON": True,
        "DERIVATIVES_COMMANDS": {
            "slow": {"argv": [sys.executable, "-c", slow], "formats": {"png": "x/y"}},
        },
    }
    for name in ("e.bin", "f.bin"):
        default_storage.save(name, ContentFile(b"x"))
    streaming = await obtain_or_stream(default_storage, "default", "e.bin", parse_spec("run=slow"))
    assert isinstance(streaming, Streaming)
    assert await anext(streaming.body) == b"x"
    with pytest.raises(ProcessingUnavailable, match="too many derivatives in progress"):
        await obtain_or_stream(default_storage, "default", "f.bin", parse_spec("run=slow"))
    await streaming.body.aclose()  # type: ignore[attr-defined]
    started = time.monotonic()
    while streaming_module._runs.get(asyncio.get_running_loop()):
        assert time.monotonic() - started < 5, "the abandoned run was not ended"
        await asyncio.sleep(0.02)
    assert not [path for path in stored_files(in_process) if path.suffix == ".png"]


def test_the_command_processor_refuses_other_kinds(settings: Any) -> None:
    with pytest.raises(SpecMismatch):
        CommandProcessor().check(parse_spec("300x200"), get_config())


async def test_a_follower_behind_the_command_reads_the_file(in_process: Path) -> None:
    """A body not read while the command ran gets every byte afterwards, from the file."""
    data = secrets.token_bytes(1024 * 1024)
    default_storage.save("g.bin", ContentFile(data))
    streaming = await obtain_or_stream(default_storage, "default", "g.bin", parse_spec("run=copy"))
    assert isinstance(streaming, Streaming)
    started = time.monotonic()
    while streaming_module._runs.get(asyncio.get_running_loop()):
        assert time.monotonic() - started < 10, "the run did not end"
        await asyncio.sleep(0.02)
    assert [path.read_bytes() for path in stored_files(in_process) if path.suffix == ".png"] == [
        data
    ]
    assert b"".join([chunk async for chunk in streaming.body]) == data
