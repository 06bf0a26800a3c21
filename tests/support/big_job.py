"""The 200 MB job: a deterministic file made once per machine, sent in 64 KiB pieces, and a
watch on this process's resident memory while it goes."""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from drivers.transport import JobInfo, Transport

BIG_SIZE = 200 * 1024 * 1024
CHUNK = 64 * 1024
_BLOCK = 1024 * 1024
_PATH = Path(os.environ.get("TMPDIR", "/tmp")) / f"ipp-gateway-job-{BIG_SIZE}.bin"


def big_file() -> tuple[Path, str]:
    """(path, sha256) of the 200 MB job file, made the first time it is asked for. Test
    processes running at once (pytest-xdist) make it once, under a lock: the digest file is
    written first and the data renamed into place last, so a file that is there is whole."""
    digest_path = _PATH.with_suffix(".sha256")
    with open(_PATH.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _PATH.exists() and digest_path.exists() and _PATH.stat().st_size == BIG_SIZE:
            return _PATH, digest_path.read_text().strip()
        rng = random.Random(200)
        digest = hashlib.sha256()
        partial = _PATH.with_suffix(f".part-{os.getpid()}")
        with open(partial, "wb") as out:
            for _ in range(BIG_SIZE // _BLOCK):
                block = rng.randbytes(_BLOCK)
                digest.update(block)
                out.write(block)
        digest_path.write_text(digest.hexdigest())
        os.replace(partial, _PATH)
        return _PATH, digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


async def send_file(transport: Transport, job: JobInfo, path: Path) -> None:
    """What the printer worker does: start, stream the file in 64 KiB pieces, end."""
    await transport.start_job(job)
    async with await trio.open_file(path, "rb") as source:
        while chunk := await source.read(CHUNK):
            await transport.send_all(chunk)
    await transport.end_job()


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class RssWatch:
    start: int = 0
    peak: int = 0

    @property
    def growth(self) -> int:
        return self.peak - self.start


@asynccontextmanager
async def watch_rss(interval: float = 0.02) -> AsyncIterator[RssWatch]:
    """Peak resident memory of this process while the block runs."""
    watch = RssWatch(rss_bytes(), rss_bytes())

    async def sample() -> None:
        while True:
            watch.peak = max(watch.peak, rss_bytes())
            await trio.sleep(interval)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample)
        yield watch
        watch.peak = max(watch.peak, rss_bytes())
        nursery.cancel_scope.cancel()
