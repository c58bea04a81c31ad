"""FilesystemSource: the read paths (page cache on the loop, threads) and their fairness."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest

from fileresponse.exceptions import SourceNotFound, UnsafePath
from fileresponse.sources import cached, filesystem
from fileresponse.sources.filesystem import FilesystemSource

SIZE = 4 * 1024 * 1024 + 123


@pytest.fixture
def data() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture
def big(tmp_path: Path, data: bytes) -> Path:
    """A file just written, so in the page cache."""
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    return path


async def read_all(source: FilesystemSource, start: int = 0, length: int = SIZE) -> bytes:
    await source.astat()
    try:
        return b"".join([chunk async for chunk in source.aiter_range(start, length, 65536)])
    finally:
        source.close()


async def test_cached_reads_on_the_loop(
    big: Path, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not filesystem._RWF_NOWAIT:
        pytest.skip("no RWF_NOWAIT on this platform")

    def no_threads(*args: object) -> bytes:
        raise AssertionError("a cached file must not need the I/O threads")

    source = FilesystemSource(big)
    monkeypatch.setattr(source, "_pread", no_threads)
    assert await read_all(source) == data


async def test_cold_reads_go_to_threads(big: Path, data: bytes) -> None:
    fd = os.open(big, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    assert await read_all(FilesystemSource(big), 1000, SIZE - 2000) == data[1000:-1000]


async def test_without_rwf_nowait(big: Path, data: bytes) -> None:
    source = FilesystemSource(big)
    source._nowait_reads = False
    assert await read_all(source) == data


async def test_the_loop_gets_turns_while_cached_data_is_read(big: Path) -> None:
    turns = 0

    async def other_task() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    try:
        await read_all(FilesystemSource(big))
    finally:
        task.cancel()
    # A turn for the other task after every chunk read.
    assert turns >= SIZE // 65536


async def test_a_shrinking_file_fails_the_read(big: Path) -> None:
    source = FilesystemSource(big)
    await source.astat()
    os.truncate(big, 1000)
    with pytest.raises(OSError, match="shrank"):
        async for _ in source.aiter_range(0, SIZE, 65536):
            pass
    source.close()


async def test_close_is_idempotent_and_releases_the_descriptor(big: Path) -> None:
    source = FilesystemSource(big)
    await source.astat()
    fd = source.file_descriptor
    assert fd is not None
    source.close()
    source.close()
    assert source.file_descriptor is None
    with pytest.raises(OSError):
        os.fstat(fd)


@pytest.mark.parametrize(
    "relative",
    ["../x", "a/../../x", "/etc/passwd", "a\\b", "a\x00b", "C:/x", "a/./../../x"],
)
def test_unsafe_relative_paths(tmp_path: Path, relative: str) -> None:
    with pytest.raises(UnsafePath):
        FilesystemSource.from_root(tmp_path, relative)


async def test_symlink_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.txt").write_text("no")
    (root / "link").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(UnsafePath):
        await FilesystemSource.from_root(root, "link").astat()


@pytest.mark.parametrize("name", ["", ".", "missing", "dir", "dir/missing", "file/below"])
async def test_not_found(tmp_path: Path, name: str) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(SourceNotFound):
        await FilesystemSource.from_root(tmp_path, name).astat()


# ---------------------------------------------------------------- open_beneath


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A root with links that stay inside and links that leave it."""
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "file.txt").write_text("inside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "file.txt").write_text("outside")
    links = {
        "relative.txt": "a/b/file.txt",
        "absolute.txt": str(root / "a" / "b" / "file.txt"),
        "dir": "a/b",
        "chain.txt": "relative.txt",
        "a/up.txt": "../a/b/file.txt",
        "a/b/back": "..",
        "out-relative": "../outside",
        "out-absolute": str(tmp_path / "outside"),
        "out-dotdot.txt": "a/../../outside/file.txt",
        "root-itself": str(root),
        "loop1": "loop2",
        "loop2": "loop1",
        "dangling.txt": "nothing-here.txt",
    }
    for name, target in links.items():
        (root / name).symlink_to(target)
    return root


@pytest.mark.parametrize(
    "relative",
    [
        "a/b/file.txt",
        "relative.txt",
        "absolute.txt",
        "dir/file.txt",
        "chain.txt",
        "a/up.txt",
        "a/b/back/b/file.txt",
        "root-itself/a/b/file.txt",
    ],
)
def test_open_beneath_follows_links_that_stay_inside(tree: Path, relative: str) -> None:
    descriptor = filesystem.open_beneath(tree, relative)
    try:
        assert os.pread(descriptor, 100, 0) == b"inside"
    finally:
        os.close(descriptor)


@pytest.mark.parametrize(
    ("relative", "error"),
    [
        ("out-relative/file.txt", UnsafePath),
        ("out-absolute/file.txt", UnsafePath),
        ("out-dotdot.txt", UnsafePath),
        ("loop1", SourceNotFound),
        ("dangling.txt", SourceNotFound),
        ("a/b/file.txt/below", SourceNotFound),
        ("a/missing/file.txt", SourceNotFound),
    ],
)
def test_open_beneath_refuses_what_leaves_or_is_missing(
    tree: Path, relative: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        filesystem.open_beneath(tree, relative)


def test_open_beneath_closes_every_descriptor(tree: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for relative in ("dir/file.txt", "out-relative/file.txt", "loop1", "a/b/back/b/file.txt"):
        with contextlib.suppress(SourceNotFound):
            os.close(filesystem.open_beneath(tree, relative))
    assert len(os.listdir("/proc/self/fd")) == before


# ---------------------------------------------------------------- opens on the event loop


def _no_threads(*args: object) -> object:
    raise AssertionError("a cached open must not need the I/O threads")


async def test_a_cached_open_stays_on_the_loop(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not cached.available():
        pytest.skip("no openat2 with RESOLVE_CACHED here")
    os.close(filesystem.open_beneath(tree, "a/b/file.txt"))  # the names are in the caches now
    monkeypatch.setattr(filesystem, "in_thread", _no_threads)
    source = FilesystemSource.from_root(tree, "a/b/file.txt")
    stat = await source.astat()
    assert stat.size == len("inside")
    assert await read_all(source, 0, stat.size) == b"inside"


@pytest.mark.parametrize("relative", ["relative.txt", "dir/file.txt", "absolute.txt"])
async def test_a_symlink_is_followed_in_the_threads(tree: Path, relative: str) -> None:
    """The cached walk stops at a symlink; the threads follow it with every check."""
    with pytest.raises(cached.NotCached):
        os.close(filesystem.open_beneath(tree, relative, cached_only=True))
    source = FilesystemSource.from_root(tree, relative)
    assert await read_all(source, 0, (await source.astat()).size) == b"inside"


async def test_cached_walks_refuse_what_leaves_the_root(tree: Path) -> None:
    for relative in ("out-relative/file.txt", "out-dotdot.txt"):
        with pytest.raises(UnsafePath):
            await FilesystemSource.from_root(tree, relative).astat()


async def test_without_openat2_opens_go_to_the_threads(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cached, "_working", False)
    with pytest.raises(cached.NotCached):
        cached.open_cached(str(tree / "a" / "b" / "file.txt"), os.O_RDONLY)
    source = FilesystemSource.from_root(tree, "a/b/file.txt")
    assert await read_all(source, 0, (await source.astat()).size) == b"inside"


def test_a_missing_name_in_a_cached_directory_is_not_found(tree: Path) -> None:
    if not cached.available():
        pytest.skip("no openat2 with RESOLVE_CACHED here")
    with contextlib.suppress(SourceNotFound):
        filesystem.open_beneath(tree, "a/b/missing.txt")  # a negative entry in the cache
    with pytest.raises(SourceNotFound):
        filesystem.open_beneath(tree, "a/b/missing.txt", cached_only=True)
