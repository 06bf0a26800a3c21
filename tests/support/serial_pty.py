"""The printer end of a pty pair: the transport opens the slave as its serial port.

The peer reads the master side in Trio (hashing everything, keeping a bounded copy) and can
play a busy printer: send XOFF and hold it, or simply stop reading. It keeps its own slave
descriptor open so the master never sees a hang-up between jobs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pty
from collections.abc import AsyncIterator
from typing import Any

import trio


class PtyPrinter:
    def __init__(self, keep_limit: int = 16 * 1024 * 1024) -> None:
        self.master, self._slave = pty.openpty()
        os.set_blocking(self.master, False)
        self.device = os.ttyname(self._slave)
        self.keep_limit = keep_limit
        self.received = bytearray()
        self.digest: Any = hashlib.sha256()
        self.total = 0
        self.reading = True
        self._resume = trio.Event()

    def uri(self, flow: str = "soft", extra: str = "") -> str:
        return f"serial:{self.device}?baud=115200&bits=8&parity=none&stop=1&flow={flow}{extra}"

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            if not self.reading:
                await self._resume.wait()
            await trio.lowlevel.wait_readable(self.master)
            try:
                data = os.read(self.master, 1 << 16)
            except BlockingIOError:
                continue
            self.digest.update(data)
            self.total += len(data)
            room = self.keep_limit - len(self.received)
            self.received += data[: max(0, room)]

    def xoff(self) -> None:
        os.write(self.master, b"\x13")

    def xon(self) -> None:
        os.write(self.master, b"\x11")

    def stop_reading(self) -> None:
        self.reading, self._resume = False, trio.Event()

    def resume_reading(self) -> None:
        self.reading = True
        self._resume.set()

    async def take(self, quiet: float = 0.05, timeout: float = 10.0) -> bytes:  # noqa: ASYNC109 - a test's bound
        """Bytes received since the last call, once nothing new came for `quiet` seconds."""
        with trio.fail_after(timeout):
            seen = -1
            while seen != self.total:
                seen = self.total
                await trio.sleep(quiet)
        data = bytes(self.received)
        self.received.clear()
        return data

    def close(self) -> None:
        os.close(self.master)
        os.close(self._slave)


@contextlib.asynccontextmanager
async def running_pty_printer() -> AsyncIterator[PtyPrinter]:
    """A pty printer reading in a task of this block; both ends are closed after."""
    peer = PtyPrinter()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(peer.run)
            yield peer
            nursery.cancel_scope.cancel()
    finally:
        peer.close()
