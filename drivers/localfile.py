"""Opening and reading spooled documents from the event loop, without a worker thread when the
kernel already holds the pages.

A worker-thread round trip costs 0.15-0.6 ms here, several times the read itself: a document the
spool has just written and fsynced is in the page cache. `preadv(..., RWF_NOWAIT)` reads only
when it need not wait for the disk; otherwise (or where the file system cannot tell) the read
goes to a worker thread as before. Opening is done in place: the spool has just created (or, after
a restart, listed) the file, so its directory entry and inode are cached.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import trio

_NOWAIT = getattr(os, "RWF_NOWAIT", None)  # Linux 4.14+; None elsewhere
_CANNOT_TELL = (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS)


def open_sized(path: Path) -> tuple[int, int]:
    """A read-only descriptor for `path` and the file's size at opening; the caller closes it."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return fd, os.fstat(fd).st_size
    except BaseException:
        os.close(fd)
        raise


def read_cached(fd: int, count: int, size: int) -> bytes | None:
    """The first `count` bytes of a file of `size` bytes if the page cache has them all, else
    None (the caller reads them the slow way)."""
    if _NOWAIT is None:
        return None
    want = min(count, size)
    buffer = bytearray(want)
    try:
        got = os.preadv(fd, [buffer], 0, _NOWAIT)
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno in _CANNOT_TELL:
            return None
        raise
    return bytes(buffer) if got == want else None


async def read_into(fd: int, buffer: memoryview, offset: int) -> int:
    """Read up to len(buffer) bytes at `offset` into `buffer`: in place when the page cache
    has (some of) them, else in a worker thread. 0 only at the end of the file."""
    if _NOWAIT is not None:
        try:
            return os.preadv(fd, [buffer], offset, _NOWAIT)
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno not in _CANNOT_TELL:
                raise
    return await trio.to_thread.run_sync(os.preadv, fd, [buffer], offset)


def _read_head_blocking(path: Path, count: int) -> bytes:
    with path.open("rb") as file:
        return file.read(count)


async def read_head(path: Path, count: int) -> bytes:
    """The first `count` bytes of the file (fewer if it is shorter). A checkpoint."""
    await trio.lowlevel.checkpoint_if_cancelled()
    fd, size = open_sized(path)
    try:
        head = read_cached(fd, count, size)
    finally:
        os.close(fd)
    if head is None:
        return await trio.to_thread.run_sync(_read_head_blocking, path, count)
    await trio.lowlevel.cancel_shielded_checkpoint()
    return head
