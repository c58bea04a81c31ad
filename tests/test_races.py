"""Races through real servers: files and directories changed while they are served.

Each test runs a thread that changes the media tree as fast as it can while
client threads request the same path, for a bounded time per server. The
answers must always be one version's status, headers and bytes: never one
file's ETag with another's body, never a file outside the root, never a 5xx.
"""

import hashlib
import os
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import rawhttp
from tests.servers import SECRET_MARKER, SERVER_KINDS, LiveServer, MediaTree

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("no_tracebacks_in_server_logs")]

#: Seconds of racing per server and test.
RACE_SECONDS = 2.0
CLIENTS = 4


@contextmanager
def changing(change: Callable[[], None]) -> Iterator[list[int]]:
    """Run ``change`` in a loop in a thread while the block runs; yields [number of changes]."""
    stop = threading.Event()
    count = [0]

    def loop() -> None:
        while not stop.is_set():
            change()
            count[0] += 1
            time.sleep(0.0005)

    thread = threading.Thread(target=loop, name="race-changer", daemon=True)
    thread.start()
    try:
        yield count
    finally:
        stop.set()
        thread.join(timeout=10)


def hammer(server: LiveServer, target: str, seconds: float) -> list[rawhttp.RawResponse | str]:
    """GET ``target`` from several threads for ``seconds``: responses, or the error of each."""
    results: list[rawhttp.RawResponse | str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < deadline:
            try:
                answer: rawhttp.RawResponse | str = rawhttp.request(
                    server.host, server.port, "GET", target, timeout=10
                )
            except (OSError, rawhttp.ProtocolError) as error:
                answer = f"{type(error).__name__}: {error}"
            with lock:
                results.append(answer)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    return results


# ---------------------------------------------------------------- a file replaced


@pytest.fixture(scope="module")
def versions(media: MediaTree) -> tuple[Path, dict[bytes, str]]:
    """Two versions of ``races/swap.bin`` kept as hard links; the served name is swapped."""
    directory = media.root / "races"
    directory.mkdir(exist_ok=True)
    generator = random.Random(7)
    contents = {"a": generator.randbytes(256 * 1024), "b": generator.randbytes(200 * 1024)}
    digests = {}
    for label, content in contents.items():
        (directory / f".version-{label}").write_bytes(content)
        digests[hashlib.sha256(content).digest()] = label
    if not (directory / "swap.bin").exists():  # set up once, whatever the fixture's reuse
        os.link(directory / ".version-a", directory / "swap.bin")
    return directory, digests


def test_a_replaced_file_is_served_as_one_version(
    server: LiveServer, versions: tuple[Path, dict[bytes, str]]
) -> None:
    directory, digests = versions
    swap, staged = directory / "swap.bin", directory / ".swap.tmp"
    version_a = (directory / ".version-a").stat().st_ino

    def replace() -> None:
        other = "b" if swap.stat().st_ino == version_a else "a"
        os.link(directory / f".version-{other}", staged)
        os.replace(staged, swap)  # atomic: the name always names a whole version

    with changing(replace) as swaps:
        results = hammer(server, "/files/races/swap.bin", RACE_SECONDS)

    bodies_by_etag: dict[str, set[str]] = defaultdict(set)
    wrong = []
    for result in results:
        if isinstance(result, str):
            wrong.append(result)
            continue
        label = digests.get(hashlib.sha256(result.body).digest())
        length = result.header("Content-Length")
        if result.status != 200 or label is None or int(length or -1) != len(result.body):
            wrong.append(f"{result.status}, {length} bytes announced, {len(result.body)} sent")
            continue
        bodies_by_etag[result.header("ETag") or ""].add(label)
    assert swaps[0] > 100, "the file was hardly replaced: the race did not run"
    assert len(results) > 20
    assert not wrong, f"{len(wrong)} wrong answers of {len(results)}: {wrong[:5]}"
    mixed = {etag: labels for etag, labels in bodies_by_etag.items() if len(labels) > 1}
    assert not mixed, f"one ETag, two bodies: {mixed}"


# ---------------------------------------------------------------- a directory swapped


@pytest.fixture(scope="module")
def swapped_directory(media: MediaTree) -> Path:
    """``races/dir`` with ``inside.txt``; the test swaps it for a symlink out of the root."""
    races = media.root / "races"
    races.mkdir(exist_ok=True)
    (races / "dir").mkdir(exist_ok=True)
    (races / "dir" / "inside.txt").write_bytes(b"inside the root\n")
    # Outside: the same name, the secret's content.
    (media.outside / "inside.txt").write_bytes(SECRET_MARKER + b"\n")
    return races


def test_a_directory_swapped_for_a_symlink_never_escapes(
    server: LiveServer, swapped_directory: Path, media: MediaTree
) -> None:
    races = swapped_directory
    directory, parked = races / "dir", races / ".dir-parked"

    def swap() -> None:
        os.rename(directory, parked)
        os.symlink(media.outside, directory, target_is_directory=True)
        os.unlink(directory)
        os.rename(parked, directory)

    with changing(swap) as swaps:
        results = hammer(server, "/files/races/dir/inside.txt", RACE_SECONDS)

    escapes = [r for r in results if not isinstance(r, str) and SECRET_MARKER in r.body]
    errors = [r if isinstance(r, str) else f"{r.status}: {r.body[:200]!r}" for r in results]
    errors = [
        error
        for error, result in zip(errors, results, strict=True)
        if isinstance(result, str) or result.status not in (200, 404)
    ]
    served = [r for r in results if not isinstance(r, str) and r.status == 200]
    assert swaps[0] > 100, "the directory was hardly swapped: the race did not run"
    assert not escapes, f"{len(escapes)} of {len(results)} answers served a file outside the root"
    assert not errors, f"{len(errors)} of {len(results)} answers failed: {errors[:5]}"
    assert all(r.body == b"inside the root\n" for r in served)
    assert served, "no request found the file: the race hid it all the time"


# ---------------------------------------------------------------- a derivative's source swapped


def test_a_derivative_never_shows_a_source_outside_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker process opens the source again: it must find the file that was stat'ed."""
    pytest.importorskip("PIL")
    from PIL import Image

    from fileresponse.derivatives.signing import signed_path
    from fileresponse.derivatives.spec import parse_spec
    from tests import images

    media = MediaTree(root=tmp_path / "media", outside=tmp_path / "outside", files={})
    directory, parked = media.root / "dir", media.root / ".dir-parked"
    directory.mkdir(parents=True)
    media.outside.mkdir()
    red, blue = (220, 20, 20), (20, 20, 220)
    for where, color in ((directory, red), (media.outside, blue)):
        image = Image.new("RGB", (400, 300), color)
        (where / "photo.jpg").write_bytes(images.encode(image, "JPEG"))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.derivatives_site.settings")
    monkeypatch.setenv("FILERESPONSE_TEST_DERIVATIVES_ROOT", str(tmp_path / "derivatives"))
    monkeypatch.setenv("FILERESPONSE_TEST_LOCK_DIR", str(tmp_path / "locks"))
    server = LiveServer(SERVER_KINDS["uvicorn-patched"], media, tmp_path / "server.log")
    server.start()

    def swap() -> None:
        os.rename(directory, parked)
        os.symlink(media.outside, directory, target_is_directory=True)
        os.unlink(directory)
        os.rename(parked, directory)

    answers = []
    try:
        with changing(swap) as swaps:
            deadline = time.monotonic() + 2 * RACE_SECONDS
            width = 40
            while time.monotonic() < deadline:
                width += 1  # a new spec each time: every request is a miss
                target = "/derivatives/" + signed_path("dir/photo.jpg", parse_spec(f"{width}x"))
                answers.append(rawhttp.request(server.host, server.port, "GET", target))
    finally:
        server.stop()
    log = server.log_tail(100_000)
    made = [answer for answer in answers if answer.status == 200]
    colors = [images.decode(answer.body).convert("RGB").getpixel((5, 5)) for answer in made]
    assert swaps[0] > 100
    outside = [color for color in colors if images.close(color, blue)]
    assert not outside, f"{len(outside)} of {len(made)} derivatives show the file outside the root"
    assert made, "no derivative was made: the race hid the source all the time"
    assert {answer.status for answer in answers} <= {200, 404, 503}, log
    assert all(images.close(color, red) for color in colors)
    assert "Traceback" not in log
