"""TCP plumbing shared by the LPD and AppSocket transports: connecting, and what failures mean.

Not a transport itself (it registers no scheme). Reserved source ports are tried one after the
other, each once, from a random start: a port still in TIME_WAIT is skipped at once instead of
stalling, as CUPS's lpd backend does when its ports run out.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import math
import os
import random
import socket
import struct
import termios
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import trio

from drivers import localfile
from drivers.errors import Outcome, TransportError, os_reason
from drivers.uri import UriOptions, host_port

log = logging.getLogger("drivers.tcp")

RFC1179_PORTS = tuple(range(721, 732))
PRIVILEGED_PORTS = tuple(range(512, 1024))
CHUNK = 64 * 1024
_PORT_BUSY = (errno.EADDRINUSE, errno.EADDRNOTAVAIL)
_ACK_POLL = 0.01


class PrivilegeError(TransportError):
    """A reserved source port needs root or CAP_NET_BIND_SERVICE."""


# The timeout becomes a TransportError naming the peer, which a caller's cancel scope would not
# give.
async def connect(
    host: str, port: int, *, timeout: float, source_ports: Sequence[int] = (), what: str = ""  # noqa: ASYNC109
) -> trio.SocketStream:
    """A connected stream, or TransportError(RETRY, connecting-to-device) that says, in words,
    where it tried and why it failed: "lpd: cannot connect to [::1]:515: connection refused"."""
    where = host_port(host, port)
    prefix = f"{what}: " if what else ""
    try:
        with trio.fail_after(timeout):
            if source_ports:
                return await _connect_from(host, port, source_ports)
            if _is_ip_literal(host):  # one address: no need for Happy Eyeballs' machinery
                return await _connect_from(host, port, (0,))
            return await trio.open_tcp_stream(host, port)
    except trio.TooSlowError:
        raise TransportError(
            f"{prefix}no connection to {where} after {timeout:g} s",
            reason="connecting-to-device",
        ) from None
    except PrivilegeError:
        raise
    except OSError as exc:
        raise TransportError(
            f"{prefix}cannot connect to {where}: {os_reason(exc)}", reason="connecting-to-device"
        ) from exc


async def _connect_from(host: str, port: int, source_ports: Sequence[int]) -> trio.SocketStream:
    infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # No errno: os_reason would say only "address already in use".
    last_error: OSError = OSError("every reserved source port is in use")
    start = random.randrange(len(source_ports))
    ports = [*source_ports[start:], *source_ports[:start]]
    for family, kind, proto, _, address in infos:
        for local_port in ports:
            try:
                return await _connect_one(family, kind, proto, address, local_port)
            except OSError as exc:
                if exc.errno in _PORT_BUSY:
                    continue
                last_error = exc
                break  # refused or unreachable: the next address, not the next port
    raise last_error


def _is_ip_literal(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


async def _connect_one(
    family: int, kind: int, proto: int, address: object, local_port: int
) -> trio.SocketStream:
    """Connect from `local_port` (0: any port the kernel picks)."""
    sock = trio.socket.socket(family, kind, proto)
    connected = False
    try:
        try:
            if local_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                await sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", local_port))
        except PermissionError as exc:
            raise PrivilegeError(
                f"source port {local_port} needs root or CAP_NET_BIND_SERVICE",
                Outcome.STOP_PRINTER,
                reason="other",
            ) from exc
        await sock.connect(address)
        connected = True
        return trio.SocketStream(sock)
    finally:
        if not connected:
            sock.close()


def lost(what: str, exc: BaseException) -> TransportError:
    """The connection broke before the device accepted the whole job: resend it later."""
    return TransportError(f"{what}: connection lost ({os_reason(exc)})", Outcome.RETRY,
                          reason="offline")


def timed_out(what: str, seconds: float) -> TransportError:
    return TransportError(
        f"{what}: no progress for {seconds:g} s", Outcome.RETRY, reason="timed-out"
    )


def unacknowledged(stream: trio.SocketStream) -> int:
    """Bytes sent but not yet acknowledged by the peer's TCP (Linux SIOCOUTQ); a FIN counts 1.

    0 means the peer's host holds every byte, even if its program has not read them yet.
    """
    try:
        raw = fcntl.ioctl(stream.socket.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    except OSError:
        return 0  # closed already: nothing more can be learnt
    count: int = struct.unpack("i", raw)[0]
    return count


def _pending_error(stream: trio.SocketStream) -> OSError | None:
    code = stream.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return OSError(code, os.strerror(code)) if code else None


# struct tcp_info (linux/tcp.h): `__u64 tcpi_bytes_acked` at byte 120, since Linux 4.1.
# tests/integration/test_transport_socket.py checks the offset on a real connection.
_TCPI_BYTES_ACKED = 120


def tcp_info_bytes_acked(info: bytes) -> int | None:
    """tcpi_bytes_acked from a raw struct tcp_info; None if the kernel's struct is shorter."""
    if len(info) < _TCPI_BYTES_ACKED + 8:
        return None
    acked: int = struct.unpack_from("=Q", info, _TCPI_BYTES_ACKED)[0]
    return acked


def bytes_acked(stream: trio.SocketStream) -> int | None:
    """How much of this connection's sequence space the peer's TCP acknowledged (Linux
    TCP_INFO: data, and 1 each for our SYN and our FIN); None where it is not reported.

    A running total kept by the kernel: a reset that comes after the last ACK cannot take it
    back, unlike SO_ERROR (the reset) read a moment too late.
    """
    try:
        info = stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO,
                                        _TCPI_BYTES_ACKED + 8)
    except (OSError, AttributeError):  # closed, or no TCP_INFO on this platform
        return None
    return tcp_info_bytes_acked(info)


class SentCount:
    """Data bytes one connection handed to the kernel, against what the peer's TCP
    acknowledged since `acked_at_start` (`bytes_acked` right after connecting). No I/O.

    Linux counts our SYN as 1 acknowledged byte: 0 (or None) there means a kernel that does
    not keep the count, and the answer is None: ask SIOCOUTQ instead.
    """

    def __init__(self, acked_at_start: int | None) -> None:
        self.sent = 0
        self._base = acked_at_start if acked_at_start else None

    def add(self, count: int) -> None:
        self.sent += count

    def outstanding(self, acked: int | None) -> int | None:
        """Data bytes sent and not yet acknowledged (our FIN not counted); None: unknown."""
        if acked is None or self._base is None:
            return None
        return max(0, self.sent - (acked - self._base))


def outstanding(stream: trio.SocketStream, sent: SentCount) -> int:
    """Data bytes the peer's host has not acknowledged yet, by TCP_INFO, else by SIOCOUTQ
    (which may count our FIN: one byte of slack)."""
    by_count = sent.outstanding(bytes_acked(stream))
    return by_count if by_count is not None else max(0, unacknowledged(stream) - 1)


# The timeout becomes a TransportError (RETRY, timed-out), as in `connect`.
async def wait_acknowledged(
    stream: trio.SocketStream, sent: SentCount, *, timeout: float, what: str  # noqa: ASYNC109
) -> None:
    """Return once the peer's host acknowledged every data byte counted in `sent`.

    A printer that stops reading (out of paper) is waited for, up to `timeout`; a reset
    before that means it dropped what it had not read: TransportError(RETRY, offline).
    """
    try:
        with trio.fail_after(timeout):
            while True:
                # The error first, then the count: once reset, a connection's acknowledged
                # count is final, so a reset with every byte acknowledged is a printer that
                # took the whole job and then reset (many do right after reading EOF), not
                # lost data. Deciding on the error alone said RETRY whenever this poll
                # missed the moment between the last ACK and the reset: a job printed twice.
                error = _pending_error(stream)
                if outstanding(stream, sent) == 0:
                    return
                if error is not None:
                    raise lost(what, error)
                await trio.sleep(_ACK_POLL)
    except trio.TooSlowError:
        raise timed_out(what, timeout) from None


async def read_until_eof(stream: trio.SocketStream, limit: int) -> bytes:
    """Everything the peer sends until it closes, keeping at most `limit` bytes."""
    kept = bytearray()
    while data := await stream.receive_some(CHUNK):
        kept += data[: max(0, limit - len(kept))]
    return bytes(kept)


def address(options: UriOptions, default_port: int) -> tuple[str, int]:
    """The host and port of a TCP device URI: a host is required, port 0 is not a port."""
    uri = options.uri
    if not uri.host:
        raise options.error(f"no host: a {options.form} URI is {options.form}HOST[:PORT]")
    if uri.port == 0:
        raise options.error("port 0 is not a port")
    return uri.host, uri.port or default_port


class WaitWatch:
    """What a job is waiting on and since when, for status reports while it runs."""

    SLOW_AFTER = 1.0  # seconds of waiting before a report mentions it

    def __init__(self) -> None:
        self._waiting: tuple[str, float] | None = None

    def progressed(self) -> None:
        """Data moved: whatever the job waits on, it has waited since now."""
        if self._waiting is not None:
            self._waiting = (self._waiting[0], trio.current_time())

    @contextlib.contextmanager
    def waiting_for(self, what: str) -> Iterator[None]:
        self._waiting = (what, trio.current_time())
        try:
            yield
        finally:
            self._waiting = None

    def describe(self, label: str) -> str:
        """'LABEL: sending the job', or how long it has waited, and on what."""
        waiting = self._waiting
        seconds = trio.current_time() - waiting[1] if waiting else 0.0
        if waiting is None or seconds < self.SLOW_AFTER:
            return f"{label}: sending the job"
        return f"{label}: waiting {seconds:.0f} s for {waiting[0]}"


SEND_BLOCK = 256 * 1024  # read and sent at a time: fits a core's L2 cache (see send_file)


async def send_file(stream: trio.SocketStream, path: Path, on_sent: Callable[[int], None],
                    idle_timeout: float = math.inf,
                    before: Callable[[int], None] | None = None) -> int:
    """Send the file at `path` a block at a time, read in place from the page cache (a worker
    thread reads only what is not cached: a cold spool on an SD card never stalls the event
    loop). Returns the bytes sent: the file's size when it was opened (a file that shrinks
    meanwhile is a bug: RuntimeError).

    Not sendfile(2): on loopback (a local LPD spooler, the benchmarks) the receiver is the
    bottleneck and sendfile makes it read each page cold from memory, while a block that our
    copy has just brought into the cache reaches it warm: +10-20 % measured against BSD lpd
    and p910nd. To a NIC the copy costs a few per cent of one core at 1 Gbit/s.

    Raises trio.BrokenResourceError as `send_all` does, and trio.TooSlowError after
    `idle_timeout` seconds without progress; cancellable between blocks. `before` hears the
    file's size before the first byte goes, and may refuse it by raising.
    """
    await trio.lowlevel.checkpoint_if_cancelled()
    fd, size = localfile.open_sized(path)
    sent = 0
    try:
        if before is not None:
            before(size)
        block = memoryview(bytearray(max(1, min(SEND_BLOCK, size))))
        with trio.CancelScope(deadline=trio.current_time() + idle_timeout) as scope:
            while sent < size:
                count = await localfile.read_into(fd, block[:size - sent], sent)
                if count == 0:
                    raise RuntimeError(f"{path} shrank to {sent} bytes while being sent")
                await stream.send_all(block[:count])
                sent += count
                scope.deadline = trio.current_time() + idle_timeout
                on_sent(count)
            if size == 0:
                await trio.lowlevel.cancel_shielded_checkpoint()
        if scope.cancelled_caught:
            raise trio.TooSlowError
        return sent
    finally:
        os.close(fd)
