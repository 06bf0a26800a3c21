"""One gateway per spool: an exclusive lock on `<spool>/gateway.lock` that also says who holds
it (pid, the addresses it serves, its printers) for the command line and for error messages.

The lock is flock(2) on an open file description: the kernel drops it when the process dies
(kill -9 included), so a stale file never blocks a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

LOCK_NAME = "gateway.lock"


@dataclass(frozen=True)
class LockInfo:
    """What the holder of a spool says about itself."""

    pid: int
    urls: tuple[str, ...] = ()  # e.g. "ipp://127.0.0.1:8631" (reachable from this host)
    printers: tuple[str, ...] = ()
    started: float = field(default_factory=time.time)

    def describe(self) -> str:
        where = f", serving {', '.join(self.urls)}" if self.urls else ""
        return f"ipp-gateway pid {self.pid}{where}"

    @classmethod
    def from_json(cls, data: bytes) -> LockInfo | None:
        try:
            raw = json.loads(data)
            return cls(pid=int(raw["pid"]), urls=tuple(str(u) for u in raw.get("urls", ())),
                       printers=tuple(str(p) for p in raw.get("printers", ())),
                       started=float(raw.get("started", 0.0)))
        except (ValueError, KeyError, TypeError):
            return None


class SpoolInUse(Exception):
    """Another live process holds the spool's lock."""

    def __init__(self, spool: Path, holder: LockInfo | None) -> None:
        who = holder.describe() if holder is not None else "another process"
        super().__init__(f"spool {spool} is in use by {who}; stop it first, or give this "
                         "gateway its own spool with --spool DIR")
        self.spool = spool
        self.holder = holder


class SpoolLock:
    """Held for the life of the process (or until `release`)."""

    def __init__(self, spool: Path) -> None:
        self.path = spool / LOCK_NAME
        self.spool = spool
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise SpoolInUse naming the holder; OSError if the file cannot be
        opened at all (the caller words that as a spool access problem)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = LockInfo.from_json(_read_all(fd))
            os.close(fd)
            raise SpoolInUse(self.spool, holder) from None
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        self.update(LockInfo(pid=os.getpid()))

    def update(self, info: LockInfo) -> None:
        """Say who we are (and, once listening, where): read by `read_lock_info`."""
        if self._fd is None:
            raise RuntimeError("update() without the lock")
        data = json.dumps(asdict(info)).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def chown(self, uid: int, gid: int) -> None:
        if self._fd is not None:
            os.fchown(self._fd, uid, gid)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def read_lock_info(spool: Path) -> LockInfo | None:
    """The running gateway on `spool`, or None when no live process holds its lock."""
    try:
        fd = os.open(spool / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return LockInfo.from_json(_read_all(fd))  # held: the holder is alive
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None  # nobody holds it: a stale file from a process that ended
    finally:
        os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 65536, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)
