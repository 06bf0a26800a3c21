"""A port-9100 peer on loopback that can misbehave on purpose, with a PJL back channel.

Each connection is one job. It can reset or close in the middle of a job, never close after the
client's half-close, go down (stop listening) and come back on the same port, and answer
`@PJL INFO STATUS` / `USTATUS DEVICE=ON` with a chosen status code.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from dataclasses import dataclass, field

import trio

from tests.peers.procs import LOOPBACK


@dataclass
class SocketFaults:
    close_after: int | None = None  # end the connection after this many bytes of a job
    stall_after: int | None = None  # stop reading after this many bytes (a printer out of paper)
    reset: bool = True  # end it with a TCP reset rather than a FIN
    hold_open: bool = False  # after the client's EOF, never close our side
    reset_after_eof: bool = False  # after the client's EOF, reset instead of closing
    status_code: int | None = None  # answer PJL status queries with this code
    online: bool = True
    display: str = "Ready"


@dataclass
class Connection:
    data: bytearray = field(default_factory=bytearray)
    eof: bool = False  # the client half-closed after its last byte


class FakeSocketPeer:
    def __init__(self, faults: SocketFaults | None = None) -> None:
        self.faults = faults or SocketFaults()
        self.connections: list[Connection] = []
        self.port = 0
        self._scope: trio.CancelScope | None = None

    @property
    def uri(self) -> str:
        return f"socket://{LOOPBACK}:{self.port}"

    @property
    def complete_jobs(self) -> list[bytes]:
        return [bytes(c.data) for c in self.connections if c.eof]

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen (on the same port again after `down()`) until cancelled or taken down."""
        listeners = await trio.open_tcp_listeners(self.port, host=LOOPBACK)
        self.port = listeners[0].socket.getsockname()[1]
        with trio.CancelScope() as self._scope:
            task_status.started()
            await trio.serve_listeners(self._handle, listeners)

    def down(self) -> None:
        """Stop listening and drop open connections: connects are refused until `serve` again."""
        if self._scope is not None:
            self._scope.cancel()

    async def _handle(self, stream: trio.SocketStream) -> None:
        connection = Connection()
        self.connections.append(connection)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            async with stream:
                await self._receive(stream, connection)
                if not connection.eof:
                    if self.faults.reset:
                        self._reset(stream)
                    return
                if self.faults.reset_after_eof:
                    self._reset(stream)
                elif self.faults.hold_open:
                    await trio.sleep_forever()

    async def _receive(self, stream: trio.SocketStream, connection: Connection) -> None:
        limit = self.faults.close_after
        while True:
            wanted = 65536 if limit is None else min(65536, limit - len(connection.data))
            if wanted <= 0:
                return
            stall = self.faults.stall_after
            if stall is not None and len(connection.data) >= stall:
                await trio.sleep_forever()
            if stall is not None:
                wanted = min(wanted, stall - len(connection.data))
            data = await stream.receive_some(wanted)
            if not data:
                connection.eof = True
                return
            connection.data += data
            await self._answer_pjl(stream, connection.data[-len(data) - 40 :])

    async def _answer_pjl(self, stream: trio.SocketStream, recent: bytes | bytearray) -> None:
        code = self.faults.status_code
        if code is None:
            return
        for query, header in ((b"@PJL INFO STATUS", "INFO STATUS"),
                              (b"USTATUS DEVICE=ON", "USTATUS DEVICE")):
            if query in recent:
                online = "TRUE" if self.faults.online else "FALSE"
                block = (f"@PJL {header}\r\nCODE={code}\r\nDISPLAY=\"{self.faults.display}\"\r\n"
                         f"ONLINE={online}\r\n\x0c")
                await stream.send_all(block.encode())

    @staticmethod
    def _reset(stream: trio.SocketStream) -> None:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
