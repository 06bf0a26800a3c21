"""Many clients at once, for the tests of limits and access control: connections from
chosen source addresses (127.0.0.x on loopback, a second address in a network namespace),
slow clients that trickle a request head, what the gateway holds (/proc/PID/fd and limits),
and IPP over an open connection or with ipptool.

Every loop here is bounded in count; nothing asserts on wall-clock time.
"""

from __future__ import annotations

import http.client
import os
import resource
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ippwire.enums import Operation, ValueTag
from ippwire.reader import decode_message
from ippwire.writer import AttributeSpec, encode_message, request
from tests.peers.ipptool import DISPLAY_LINE, parse_report
from tests.peers.procs import find_program
from tests.support.ipp_client import job_id_of

# close() then sends a reset: no TIME_WAIT left behind for thousands of short connections.
RESET_ON_CLOSE = struct.pack("ii", 1, 0)
# A head that never ends: the trickle runs out of rounds long before it would.
ENDLESS_HEAD = b"POST /ipp/print HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (up to the hard limit; the
    gateway started afterwards inherits it); the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return soft


def connect(host: str, port: int, source: str, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout, source_address=(source, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
    return sock


def sources(prefix: str, count: int) -> list[str]:
    """`count` loopback source addresses `prefix.1` ... (e.g. "127.0.3")."""
    return [f"{prefix}.{n}" for n in range(1, count + 1)]


def open_from(host: str, port: int, addresses: Sequence[str], each: int) -> list[socket.socket]:
    """`each` connections from every address in `addresses`, round robin."""
    return [connect(host, port, address) for _ in range(each) for address in addresses]


def close_all(sockets: Sequence[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def with_events(sockets: Sequence[socket.socket], wait: float) -> set[int]:
    """The indexes of `sockets` the server has written to or closed (poll, not select: the
    descriptors go past FD_SETSIZE), waiting up to `wait` seconds for the first."""
    if not sockets:
        return set()
    poller = select.poll()
    by_fd = {}
    for index, sock in enumerate(sockets):
        poller.register(sock, select.POLLIN)
        by_fd[sock.fileno()] = index
    return {by_fd[fd] for fd, _ in poller.poll(wait * 1000)}


def drain(sock: socket.socket, limit: int = 64 * 1024) -> bytes | None:
    """What the server sent before closing (b"" for nothing); None if it was reset or has
    not closed within the socket's timeout."""
    chunks: list[bytes] = []
    received = 0
    try:
        while received < limit:
            chunk = sock.recv(4096)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            received += len(chunk)
    except ConnectionResetError:
        return b"".join(chunks) if chunks else None
    except TimeoutError:
        return None
    return b"".join(chunks)


def refused_before_any_byte(host: str, port: int, source: str, data: bytes) -> bool:
    """Connect from `source` and send `data`: whether the server closes (or resets) the
    connection without answering a single byte."""
    with connect(host, port, source) as sock:
        try:
            sock.sendall(data)
            return sock.recv(4096) == b""
        except (BrokenPipeError, ConnectionResetError):
            return True  # closed with our bytes unread: the kernel resets


class Trickle:
    """A slow client on each of `sockets`: one more byte of a never-ending request head on
    each every `interval` seconds, in a thread, for at most `rounds` rounds or until
    `stop()`. `closed` holds the indexes of the connections the server has closed."""

    def __init__(self, sockets: Sequence[socket.socket], interval: float, rounds: int) -> None:
        self.sockets = list(sockets)
        self.interval = interval
        self.rounds = rounds
        self.closed: set[int] = set()
        self.sent_rounds = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def closed_count(self) -> int:
        with self._lock:
            return len(self.closed)

    def _run(self) -> None:
        for position in range(min(self.rounds, len(ENDLESS_HEAD))):
            byte = ENDLESS_HEAD[position : position + 1]
            for index, sock in enumerate(self.sockets):
                if index in self.closed:
                    continue
                try:
                    if with_events([sock], 0.0):
                        self._close(index)  # answered (408) or closed by the server
                        continue
                    sock.send(byte)
                except OSError:
                    self._close(index)
            self.sent_rounds = position + 1
            if len(self.closed) == len(self.sockets) or self._stop.wait(self.interval):
                return

    def _close(self, index: int) -> None:
        with self._lock:
            self.closed.add(index)


# -- the gateway's side -----------------------------------------------------------------------

def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def peers_held(pid: int, prefix: str) -> int:
    """How many TCP connections process `pid` holds open from peers whose IPv4 address
    starts with `prefix` ("127.0.1."): its socket descriptors, looked up in /proc/net/tcp
    (of the network namespace this process is in)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, inode = fields[2], fields[9]
        if inode in inodes and _ipv4(remote.split(":")[0]).startswith(prefix):
            count += 1
    return count


def _ipv4(hex_le: str) -> str:
    """An address as /proc/net/tcp writes it (hex, little-endian on x86 and ARM)."""
    return socket.inet_ntoa(struct.pack("<I", int(hex_le, 16)))


def fd_soft_limit(pid: int) -> int:
    """The soft "Max open files" of /proc/PID/limits."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError(f"no 'Max open files' in /proc/{pid}/limits")


def wait_for(check: Callable[[], bool], rounds: int = 100, pause: float = 0.1) -> bool:
    """Whether `check` comes true within `rounds` tries, `pause` seconds apart."""
    for _ in range(rounds):
        if check():
            return True
        time.sleep(pause)
    return check()


def output_holds(path: Path, document: bytes, rounds: int = 300) -> bool:
    """Whether the file a job prints into comes to hold `document` (0.1 s apart)."""
    return wait_for(lambda: path.exists() and document in path.read_bytes(), rounds)


# -- IPP over a connection the caller holds ------------------------------------------------------

def ipp_over(connection: http.client.HTTPConnection, uri: str, operation: int,
             attrs: AttributeSpec, document: bytes = b"") -> tuple[int, int, int]:
    """One IPP request on `connection` (kept open): HTTP status, IPP status code, and the
    job-id of a job it created (0 if none)."""
    message = request(operation, printer_uri=uri, user="load-test", attrs=attrs)
    path = "/" + uri.split("/", 3)[3]
    connection.request("POST", path, body=encode_message(message) + document,
                       headers={"Content-Type": "application/ipp"})
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        return response.status, -1, 0
    decoded, _ = decode_message(body)
    job = job_id_of(decoded) if operation == Operation.PRINT_JOB and decoded.code == 0 else 0
    return response.status, decoded.code, job


def get_printer_state_over(connection: http.client.HTTPConnection, uri: str) -> tuple[int, int]:
    status, code, _ = ipp_over(connection, uri, Operation.GET_PRINTER_ATTRIBUTES, {
        "requested-attributes": (ValueTag.KEYWORD, "printer-state")})
    return status, code


def print_over(connection: http.client.HTTPConnection, uri: str, document: bytes,
               name: str) -> int:
    """Print-Job of `document` (raw) on `connection`; the job-id (a failure otherwise)."""
    status, code, job = ipp_over(connection, uri, Operation.PRINT_JOB, {
        "job-name": (ValueTag.NAME, name),
        "document-format": (ValueTag.MIME_MEDIA_TYPE, "application/octet-stream")}, document)
    assert (status, code) == (200, 0), (status, code)
    return job


# -- ipptool, the real client -------------------------------------------------------------------

IPPTOOL_PRINT = """{
\tNAME "Get-Printer-Attributes"
\tOPERATION Get-Printer-Attributes
\tGROUP operation-attributes-tag
\tATTR charset attributes-charset utf-8
\tATTR naturalLanguage attributes-natural-language en
\tATTR uri printer-uri $uri
\tATTR name requesting-user-name $user
\tATTR keyword requested-attributes printer-state,printer-name
\tSTATUS successful-ok
\tEXPECT printer-state OF-TYPE enum
}
{
\tNAME "Print-Job"
\tOPERATION Print-Job
\tGROUP operation-attributes-tag
\tATTR charset attributes-charset utf-8
\tATTR naturalLanguage attributes-natural-language en
\tATTR uri printer-uri $uri
\tATTR name requesting-user-name $user
\tATTR name job-name "%s"
\tATTR mimeMediaType document-format application/octet-stream
\tFILE $filename
\tSTATUS successful-ok
\tEXPECT job-id OF-TYPE integer
\tDISPLAY job-id
}
"""


def ipptool_print(uri: str, document: bytes, workdir: Path, name: str = "load",
                  wrap: Callable[[list[str]], list[str]] | None = None,
                  timeout: float = 120.0) -> int:
    """ipptool (CUPS): Get-Printer-Attributes, then Print-Job of `document` as raw; the
    job-id (a failure naming what ipptool said otherwise). `wrap` turns the command into one
    run elsewhere (NetNamespace.argv: in another network namespace)."""
    import subprocess

    workdir.mkdir(parents=True, exist_ok=True)
    suite = workdir / f"{name}.test"
    suite.write_text(IPPTOOL_PRINT % name)
    data = workdir / f"{name}.prn"
    data.write_bytes(document)
    argv = [find_program("ipptool") or "ipptool", "-t", "-f", str(data), uri, str(suite)]
    if wrap is not None:
        argv = wrap(argv)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    outcomes, _ = parse_report(done.stdout)
    report = f"{' '.join(argv)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert [o.status for o in outcomes] == ["PASS", "PASS"], report
    for detail in outcomes[1].details:
        shown = DISPLAY_LINE.match(" " + detail)
        if shown and shown["name"] == "job-id":
            return int(shown["values"])
    raise AssertionError(f"no job-id shown:\n{report}")
