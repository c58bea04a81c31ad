"""What the sources share: the protocol, the stat asked once, the deferred close, aprepare."""

from __future__ import annotations

import io
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from django.test import RequestFactory

from fileresponse.exceptions import SourceUnavailable
from fileresponse.http import AsyncFileResponse
from fileresponse.sources import Source, SourceStat, as_source
from fileresponse.sources.base import DeferredClose, StatOnce
from fileresponse.sources.filesystem import FileObjectSource, FilesystemSource
from fileresponse.threads import ThreadedReads

DATA = b"0123456789" * 1000


class MemorySource(ThreadedReads, StatOnce, DeferredClose):
    """A source with the package's helpers, counting its stats and preparations."""

    def __init__(self, *, fail_prepare: bool = False) -> None:
        super().__init__()
        self.stats = 0
        self.prepared: list[tuple[int, int]] = []
        self.released = 0
        self.fail_prepare = fail_prepare
        self.reading = threading.Event()
        self.finish_read = threading.Event()
        self.finish_read.set()

    @property
    def name(self) -> str:
        return "memory.bin"

    def _stat_now(self) -> SourceStat:
        self.stats += 1
        return SourceStat(size=len(DATA), mtime=1.0, etag="memory")

    async def aprepare(self, start: int, length: int) -> None:
        if self.fail_prepare:
            raise SourceUnavailable("the storage does not answer")
        self.prepared.append((start, length))

    def _read_at(self, offset: int, size: int) -> bytes:
        with self._read_guard():
            self.reading.set()
            self.finish_read.wait(5)
            return DATA[offset : offset + size]

    def _release(self) -> None:
        self.released += 1


def test_every_source_of_the_package_follows_the_protocol(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    assert isinstance(FilesystemSource(tmp_path / "a.txt"), Source)
    assert isinstance(FileObjectSource(io.BytesIO(b"a")), Source)
    assert isinstance(MemorySource(), Source)
    source = MemorySource()
    assert as_source(source) is source
    assert isinstance(as_source(str(tmp_path / "a.txt")), FilesystemSource)
    assert isinstance(as_source(io.BytesIO(b"a")), FileObjectSource)


def test_a_class_without_aprepare_is_no_source() -> None:
    class Partial:
        name = "partial"

        def stat(self) -> SourceStat: ...

        async def astat(self) -> SourceStat: ...

        def iter_range(self, start: int, length: int, chunk_size: int) -> Iterator[bytes]: ...

        def aiter_range(self, start: int, length: int, chunk_size: int) -> AsyncIterator[bytes]: ...

        def close(self) -> None: ...

    assert not isinstance(Partial(), Source)


async def test_the_stat_is_asked_once() -> None:
    source = MemorySource()
    first = await source.astat()
    assert source.stat() is first
    assert await source.astat() is first
    assert source.stats == 1


async def test_aprepare_is_a_no_op_for_local_sources(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("abc")
    source = FilesystemSource(tmp_path / "a.txt")
    await source.astat()
    await source.aprepare(0, 3)
    assert list(source.iter_range(0, 3, 2)) == [b"ab", b"c"]
    source.close()


@pytest.mark.parametrize(
    ("method", "headers", "prepared"),
    [
        ("GET", {}, [(0, len(DATA))]),
        ("GET", {"Range": "bytes=10-19"}, [(10, 10)]),
        (
            "GET",
            {"Range": "bytes=-5,0-1"},
            [(len(DATA) - 5, 5)],
        ),  # multipart: the first range in order
        ("HEAD", {}, []),
        ("GET", {"If-None-Match": '"memory"'}, []),  # 304: no body
    ],
)
async def test_the_response_prepares_its_first_range(
    method: str, headers: dict[str, str], prepared: list[tuple[int, int]]
) -> None:
    request = RequestFactory().generic(method, "/memory.bin", headers=headers)
    source = MemorySource()
    response = await AsyncFileResponse.acreate(source, request)
    await response.aprepare()
    assert source.prepared == prepared


async def test_a_failed_preparation_closes_the_source() -> None:
    source = MemorySource(fail_prepare=True)
    response = await AsyncFileResponse.acreate(source, RequestFactory().get("/memory.bin"))
    with pytest.raises(SourceUnavailable):
        await response.aprepare()
    assert source.released == 1
    with pytest.raises(SourceUnavailable, match="closed"):
        source._read_at(0, 1)


def test_close_waits_for_no_read_and_releases_after_it() -> None:
    source = MemorySource()
    source.finish_read.clear()
    reader = threading.Thread(target=source._read_at, args=(0, 10))
    reader.start()
    assert source.reading.wait(5)
    source.close()  # returns at once: the read is under way
    assert source.released == 0
    source.finish_read.set()
    reader.join(5)
    assert source.released == 1
    source.close()  # again: allowed
    with pytest.raises(SourceUnavailable, match="closed"):
        source._read_at(0, 1)
