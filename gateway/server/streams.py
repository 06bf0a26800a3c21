"""A stream that gives back bytes already read from it before reading on.

The HTTP layer reads ahead of what it parses; when a connection leaves HTTP (an upgrade to
WebSocket or TLS) the next owner must see those bytes first. The TLS sniffing of the
listener, to come, needs the same: trio.SSLStream over a stream that replays the first bytes.
"""

from __future__ import annotations

import trio


class ReplayStream(trio.abc.Stream):
    """`stream`, whose reads return `replay` first; writes and closing go straight through."""

    def __init__(self, replay: bytes, stream: trio.abc.Stream) -> None:
        self._replay = memoryview(replay)
        self.transport_stream = stream

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._replay:
            await trio.lowlevel.checkpoint()
            size = len(self._replay) if max_bytes is None else max_bytes
            if size < 1:
                raise ValueError("max_bytes must be at least 1")
            data, self._replay = bytes(self._replay[:size]), self._replay[size:]
            return data
        return await self.transport_stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.transport_stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport_stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        self._replay = memoryview(b"")
        await self.transport_stream.aclose()
