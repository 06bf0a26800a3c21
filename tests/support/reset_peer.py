"""A port-9100 peer that reads a job and then RESETs, run in a thread of its own.

It lives outside the test's Trio loop on purpose: the moment it resets must not depend on when
the sender's loop lets it run, as a real printer's does not. Plain blocking sockets; each
connection is one job, handled one after the other. `read_limit` makes it reset with bytes
unread (a small receive buffer keeps them unacknowledged in the sender's queue).

Its TCP acknowledges what it read at once (TCP_QUICKACK after each read), as a printer's
embedded stack does: Linux would otherwise delay the ACK of the last segments, and a reset
right after the read would leave them unacknowledged on the sender's side (the ACK a RST
carries is ignored), which rightly means RETRY there.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.peers.procs import LOOPBACK


@dataclass
class ResetConnection:
    data: bytearray = field(default_factory=bytearray)
    eof: bool = False  # the sender's EOF was read: the peer took every byte
    done: threading.Event = field(default_factory=threading.Event)


class ResettingPeer:
    def __init__(self, *, reset_delay: float = 0.0, read_limit: int | None = None,
                 rcvbuf: int | None = None) -> None:
        self.reset_delay = reset_delay  # seconds from the last read to the reset
        self.read_limit = read_limit  # stop reading after this many bytes (None: read to EOF)
        self.connections: list[ResetConnection] = []
        self._listener = socket.create_server((LOOPBACK, 0))
        if rcvbuf is not None:  # inherited by accepted sockets; set before the handshake
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="resetting-peer", daemon=True)

    @property
    def uri(self) -> str:
        return f"socket://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting and wait for the connection at hand (if any) to finish."""
        self._stop.set()
        self._thread.join(timeout=15)

    def wait_connection(self, index: int, timeout: float = 10.0) -> ResetConnection:
        """The `index`th connection once the peer has reset it (blocks: call from a thread)."""
        deadline = time.monotonic() + timeout
        while len(self.connections) <= index:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no connection #{index} within {timeout} s")
            time.sleep(0.01)
        if not self.connections[index].done.wait(max(0.0, deadline - time.monotonic())):
            raise TimeoutError(f"connection #{index} not finished within {timeout} s")
        return self.connections[index]

    def _serve(self) -> None:
        with self._listener:
            while not self._stop.is_set():
                try:
                    sock, _ = self._listener.accept()
                except TimeoutError:
                    continue
                connection = ResetConnection()
                self.connections.append(connection)
                try:
                    self._handle(sock, connection)
                finally:
                    connection.done.set()

    def _handle(self, sock: socket.socket, connection: ResetConnection) -> None:
        with sock:
            sock.settimeout(10.0)
            with contextlib.suppress(OSError):
                while self.read_limit is None or len(connection.data) < self.read_limit:
                    wanted = 65536 if self.read_limit is None else min(
                        65536, self.read_limit - len(connection.data))
                    data = sock.recv(wanted)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                    if not data:
                        connection.eof = True
                        break
                    connection.data += data
            if self.reset_delay:
                time.sleep(self.reset_delay)
            # SO_LINGER 0: close() sends a RST and drops whatever is unread.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@contextlib.contextmanager
def resetting_peer(*, reset_delay: float = 0.0, read_limit: int | None = None,
                   rcvbuf: int | None = None) -> Iterator[ResettingPeer]:
    peer = ResettingPeer(reset_delay=reset_delay, read_limit=read_limit, rcvbuf=rcvbuf)
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()
