"""Peers on loopback for the setup probe (drivers.netprobe): a port-9100 printer that answers
PJL INFO ID / INFO CONFIG like an HP laser, and an LPD server that knows only some queues.

`PjlPeer` answers each `@PJL INFO ID` and `@PJL INFO CONFIG` line it reads, as a LaserJet
does (a block ended by a form feed), with its model and language list; `silent=True` makes it
accept and never answer (a black hole, or a print server with no PJL). It records every
connection's bytes.

`QueueLpd` is tests.support.fake_lpd.FakeLpd answering send-queue-state with "unknown
printer" (BSD lpd's words) for any queue but its own: FakeLpd answers every queue name alike.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import trio

from tests.peers.procs import LOOPBACK
from tests.support.fake_lpd import FakeLpd, LpdFaults

FORM_FEED = b"\x0c"
# An HP LaserJet 4000's INFO CONFIG, its LANGUAGES section filled in per peer.
_CONFIG_BEFORE = (
    "@PJL INFO CONFIG\r\n"
    "IN TRAYS [3 ENUMERATED]\r\n\tINTRAY1 MP\r\n\tINTRAY2 PC\r\n\tINTRAY3 LC\r\n"
    "OUT TRAYS [1 ENUMERATED]\r\n\tNORMAL FACEDOWN\r\n"
    "PAPERS [3 ENUMERATED]\r\n\tLETTER\r\n\tLEGAL\r\n\tA4\r\n"
)
_CONFIG_AFTER = (
    "USTATUS [4 ENUMERATED]\r\n\tDEVICE\r\n\tJOB\r\n\tPAGE\r\n\tTIMED\r\n"
    "FONT CARTRIDGE SLOTS [1 ENUMERATED]\r\n\tCARTRIDGE\r\n"
    "MEMORY=8388608\r\nDISPLAY LINES=2\r\nDISPLAY CHARACTER SIZE=16\r\n"
)
_READ_LIMIT = 64 * 1024


def info_id_reply(model: str) -> bytes:
    return f'@PJL INFO ID\r\n"{model}"\r\n'.encode("ascii") + FORM_FEED


def info_config_reply(languages: tuple[str, ...]) -> bytes:
    section = f"LANGUAGES [{len(languages)} ENUMERATED]\r\n" + "".join(
        f"\t{language}\r\n" for language in languages)
    return (_CONFIG_BEFORE + section + _CONFIG_AFTER).encode("ascii") + FORM_FEED


@dataclass
class PjlPeer:
    model: str = "HP LaserJet 4000"
    languages: tuple[str, ...] = ("PCL", "POSTSCRIPT")
    silent: bool = False  # accept connections, never answer
    port: int = 0
    received: list[bytes] = field(default_factory=list)  # each connection's bytes

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host=LOOPBACK)
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        index = len(self.received)
        self.received.append(b"")
        buffer = bytearray()
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            async with stream:
                while len(buffer) < _READ_LIMIT and (data := await stream.receive_some(4096)):
                    buffer += data
                    self.received[index] = bytes(buffer)
                    if self.silent:
                        continue
                    # Answer each complete query line once, in the order asked.
                    while (end := buffer.find(b"\n")) >= 0:
                        line = bytes(buffer[:end]).strip().upper()
                        del buffer[: end + 1]
                        if line.endswith(b"@PJL INFO ID"):
                            await stream.send_all(info_id_reply(self.model))
                        elif line.endswith(b"@PJL INFO CONFIG"):
                            await stream.send_all(info_config_reply(self.languages))


class QueueLpd(FakeLpd):
    """FakeLpd's listener, answering send-queue-state only, and only for `queues` as FakeLpd
    does: any other name is "unknown printer". It takes no print jobs."""

    def __init__(self, queues: tuple[str, ...], faults: LpdFaults | None = None) -> None:
        super().__init__(faults)
        self.queues = queues

    async def _handle(self, stream: trio.SocketStream) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            async with stream:
                command = b""
                while b"\n" not in command and len(command) < 1024:
                    data = await stream.receive_some(1024)
                    if not data:
                        return
                    command += data
                line = command.split(b"\n", 1)[0]
                if line[:1] not in (b"\x03", b"\x04"):
                    return
                self.queue_requests.append(line)
                queue = line[1:].split(b" ", 1)[0].decode("ascii", "replace")
                if queue in self.queues:
                    await stream.send_all(self.faults.queue_state)
                else:
                    await stream.send_all(f"lpd: {queue}: unknown printer\n".encode())
