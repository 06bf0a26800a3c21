"""drivers.localfile: the page cache answers in place, the disk in a worker thread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from drivers import localfile


def written(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "doc"
    with path.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    return path


def drop_pages(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def evicted(path: Path) -> bool:
    """Drop the file's clean pages from the page cache; False where the kernel keeps them."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return localfile.read_cached(fd, 16, os.fstat(fd).st_size) is None
    finally:
        os.close(fd)


def test_cached_head_is_read_in_place(tmp_path: Path) -> None:
    path = written(tmp_path, b"%PDF-1.7\n" + bytes(range(256)) * 40)
    fd, size = localfile.open_sized(path)
    try:
        assert size == 9 + 256 * 40
        assert localfile.read_cached(fd, 512, size) == path.read_bytes()[:512]
        assert localfile.read_cached(fd, 50_000, size) == path.read_bytes()  # shorter file
    finally:
        os.close(fd)


async def test_read_head_gives_the_same_bytes_from_cache_and_from_disk(tmp_path: Path) -> None:
    data = b"%!PS-Adobe-3.0\n" + os.urandom(20_000)
    path = written(tmp_path, data)
    assert await localfile.read_head(path, 512) == data[:512]
    if not evicted(path):
        pytest.skip("this file system keeps the pages (or cannot say): no disk path to test")
    hops = 0
    real = trio.to_thread.run_sync

    async def counting(*args: object, **kwargs: object) -> object:
        nonlocal hops
        hops += 1
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    # A missed RWF_NOWAIT read may start readahead that lands after the eviction, so the
    # pages can be back by the time read_head looks: drop them again, after that readahead
    # has had time to finish, a few times at most.
    for _ in range(5):
        await trio.sleep(0.05)
        drop_pages(path)
        hops = 0
        trio.to_thread.run_sync = counting  # type: ignore[assignment]
        try:
            assert await localfile.read_head(path, 512) == data[:512]
        finally:
            trio.to_thread.run_sync = real
        if hops:
            break
    assert hops == 1  # not in the page cache: read by a worker thread


async def test_empty_and_missing_files(tmp_path: Path) -> None:
    assert await localfile.read_head(written(tmp_path, b""), 512) == b""
    with pytest.raises(FileNotFoundError):
        await localfile.read_head(tmp_path / "gone", 512)


async def test_read_into_reads_cached_and_cold_pages_alike(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    path = written(tmp_path, data)
    fd, size = localfile.open_sized(path)
    try:
        for cold in (False, True):
            if cold and not evicted(path):
                pytest.skip("this file system keeps the pages (or cannot say)")
            got, offset = bytearray(), 0
            block = memoryview(bytearray(65_536))
            while count := await localfile.read_into(fd, block, offset):
                got += block[:count]
                offset += count
            assert bytes(got) == data and offset == size
    finally:
        os.close(fd)
