"""An in-process peer (fake LPD, fake port 9100, stalling printer ...) serving for a block."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Protocol, TypeVar

import trio


class ServingPeer(Protocol):
    async def serve(self, task_status: trio.TaskStatus[None] = ...) -> None: ...


Peer = TypeVar("Peer", bound=ServingPeer)


@contextlib.asynccontextmanager
async def serving(peer: Peer) -> AsyncIterator[Peer]:
    """`peer.serve` runs in a task of this block; it is cancelled at the end."""
    async with trio.open_nursery() as nursery:
        await nursery.start(peer.serve)
        yield peer
        nursery.cancel_scope.cancel()
