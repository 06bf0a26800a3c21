"""The transport peers as context managers, for the fixtures of every test module: each skips
with the reason when its program is missing, and stops its peer by PID (or its task) after."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Protocol, TypeVar

import pytest
import trio

from tests.peers_transport.bsd_lpd import LPD, BsdLpd
from tests.peers_transport.p910nd import P910ND, P910nd
from tests.peers_transport.serial_pty import PtyPrinter


@contextlib.contextmanager
def running_bsd_lpd() -> Iterator[BsdLpd]:
    if not os.path.exists(LPD) or not shutil.which("unshare") or os.geteuid() != 0:
        pytest.skip("needs BSD lpd (package lpr), unshare and root (private mount namespace)")
    server = BsdLpd()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_p910nd(hash_only: bool = False) -> Iterator[P910nd]:
    """`hash_only`: the sink keeps the size and sha256 of each connection, not its bytes."""
    if not os.path.exists(P910ND):
        pytest.skip("needs p910nd (Debian package p910nd)")
    server = P910nd(hash_only=hash_only)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class ServingPeer(Protocol):
    async def serve(self, task_status: trio.TaskStatus[None] = ...) -> None: ...


Peer = TypeVar("Peer", bound=ServingPeer)


@contextlib.asynccontextmanager
async def serving(peer: Peer) -> AsyncIterator[Peer]:
    """An in-process peer (fake LPD, fake 9100 ...) serving for the block."""
    async with trio.open_nursery() as nursery:
        await nursery.start(peer.serve)
        yield peer
        nursery.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def running_pty_printer() -> AsyncIterator[PtyPrinter]:
    peer = PtyPrinter()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(peer.run)
            yield peer
            nursery.cancel_scope.cancel()
    finally:
        peer.close()
