"""A port-9100 printer that stops reading mid-job (out of paper) and tells when the sender quits.

While it stalls, a sender's close cannot reach it (the FIN waits behind the unread bytes in a
zero window), so the close shows two ways: `sender_state` reads the sender's end of the
connection in /proc/net/tcp (ESTABLISHED until the sender closes its socket), and after
`drain()` the peer reads on and stamps the moment the EOF arrives.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import trio

from tests.peers.procs import LOOPBACK

TCP_ESTABLISHED = "01"


@dataclass
class StalledConnection:
    client_port: int
    received: int = 0
    eof_at: float | None = None  # time.monotonic() when the EOF arrived, after a drain
    done: trio.Event = field(default_factory=trio.Event)


class StallingPeer:
    """Each connection is one job; it reads `stall_after` bytes, then waits for `drain()`."""

    def __init__(self, stall_after: int) -> None:
        self.stall_after = stall_after
        self.connections: list[StalledConnection] = []
        self.port = 0
        self._draining = trio.Event()

    @property
    def uri(self) -> str:
        return f"socket://{LOOPBACK}:{self.port}"

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host=LOOPBACK)
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    def drain(self) -> None:
        """Read on, in every connection (stalled or to come), up to the sender's EOF."""
        self._draining.set()

    async def _handle(self, stream: trio.SocketStream) -> None:
        connection = StalledConnection(stream.socket.getpeername()[1])
        self.connections.append(connection)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            async with stream:
                while True:
                    stalled = connection.received >= self.stall_after
                    if stalled and not self._draining.is_set():
                        await self._draining.wait()
                    room = self.stall_after - connection.received
                    wanted = 65536 if self._draining.is_set() else min(65536, room)
                    data = await stream.receive_some(wanted)
                    if not data:
                        connection.eof_at = time.monotonic()
                        break
                    connection.received += len(data)
        connection.done.set()


def sender_state(client_port: int, server_port: int) -> str | None:
    """The TCP state (hex, as in /proc/net/tcp) of the client's end of a loopback connection
    to `server_port`; None once that socket is gone."""
    local, remote = f"0100007F:{client_port:04X}", f"0100007F:{server_port:04X}"
    with open("/proc/net/tcp") as table:
        for line in table:
            fields = line.split()
            if len(fields) > 3 and fields[1] == local and fields[2] == remote:
                return fields[3]
    return None
