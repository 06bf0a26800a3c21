"""Connection caps, request deadlines and access rules, against a real gateway process on
loopback. Clients take other loopback addresses (127.0.0.2, ...) as their source, so that
one address floods or is refused while another prints. Every loop is bounded in count; no
assertion is on wall-clock time."""

from __future__ import annotations

import http.client
import re
import select
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ippwire.enums import Operation, ValueTag
from ippwire.reader import decode_message
from ippwire.writer import encode_message, request
from tests.peers.gateway_proc import GatewayProcess, PrinterTable, start_configured_gateway
from tests.peers.procs import LOOPBACK
from tests.support.ipp_client import submit

FLOOD_LIMIT = 3000  # connections one flooder may try before the test gives up on the cap
REFUSED = "refused"
PRINTER = (PrinterTable("flood"),)


def gateway(tmp_path: Path, extra_toml: str) -> GatewayProcess:
    return start_configured_gateway(tmp_path, PRINTER, log_level="info", extra_toml=extra_toml)


def connect(port: int, source: str) -> socket.socket:
    sock = socket.create_connection((LOOPBACK, port), timeout=10, source_address=(source, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    return sock


def answered_or_closed(sockets: list[socket.socket], wait: float) -> bool:
    """Whether the server has written to or closed any of `sockets` (a refusal) within
    `wait` seconds (poll, not select: the descriptors go past FD_SETSIZE)."""
    poller = select.poll()
    for sock in sockets:
        poller.register(sock, select.POLLIN)
    return bool(poller.poll(wait * 1000))


def flood(stack: ExitStack, port: int, source: str) -> list[socket.socket]:
    """Open connections from `source` until one is refused (or FLOOD_LIMIT); all stay open
    (closed by `stack`)."""
    opened: list[socket.socket] = []
    for _ in range(FLOOD_LIMIT):
        opened.append(stack.enter_context(connect(port, source)))
        # Now and then give the gateway time to catch up with the connections made.
        if answered_or_closed(opened[-50:], 0.5 if len(opened) % 50 == 0 else 0.0):
            return opened
    raise AssertionError(f"{FLOOD_LIMIT} connections from {source} and none refused")


def still_served(sockets: list[socket.socket]) -> int:
    """How many of `sockets` the gateway serves: each asks for a page; a refused one was
    closed (or answered 503) at once."""
    served = 0
    for sock in sockets:
        try:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = sock.recv(12)
        except OSError:
            continue  # reset: closed by the gateway long ago
        if reply.startswith(b"HTTP/1.1 200"):
            served += 1
        else:
            assert reply in (b"", b"HTTP/1.1 503"), reply
    return served


def ipp_on(connection: http.client.HTTPConnection, port: int) -> int:
    """Get-Printer-Attributes on an open keep-alive connection; the HTTP status."""
    message = request(Operation.GET_PRINTER_ATTRIBUTES,
                      printer_uri=f"ipp://{LOOPBACK}:{port}/ipp/print",
                      attrs={"requested-attributes": (ValueTag.KEYWORD, "printer-state")})
    connection.request("POST", "/ipp/print", body=encode_message(message),
                       headers={"Content-Type": "application/ipp"})
    response = connection.getresponse()
    body = response.read()
    if response.status == 200:
        assert decode_message(body)[0].code == 0
    return response.status


def log_text(gw: GatewayProcess) -> str:
    return gw.log.read_text()


def test_connection_caps_hold_while_another_client_prints(tmp_path: Path) -> None:
    gw = gateway(tmp_path, "[limits]\nmax_connections = 200\nmax_connections_per_client = 150\n"
                           "idle_timeout = 300\n")
    with gw, ExitStack() as stack:
        keep_alive = http.client.HTTPConnection(LOOPBACK, gw.port, timeout=30)
        stack.callback(keep_alive.close)
        assert ipp_on(keep_alive, gw.port) == 200  # open before the floods

        first = flood(stack, gw.port, "127.0.0.2")
        job = submit(gw.port, b"printed during the flood\n", name="during")  # from 127.0.0.1
        assert job > 0

        second = flood(stack, gw.port, "127.0.0.3")  # now the total cap
        fresh = stack.enter_context(connect(gw.port, "127.0.0.4"))
        assert answered_or_closed([fresh], 10)  # refused at once, not left hanging
        assert fresh.recv(64).startswith(b"HTTP/1.1 503 Service Unavailable")
        assert ipp_on(keep_alive, gw.port) == 200  # an open connection is still served

        per_client, rest = still_served(first), still_served(second)
        assert per_client == 150
        assert per_client + rest + 1 <= 200 and rest >= 1  # + the keep-alive connection

        text = log_text(gw)
        assert "connections: at most 200, 150 per client address" in text
        assert ("connection refused: 150 connections open from 127.0.0.2, the cap "
                "(limits.max_connections_per_client)") in text
        assert "the cap (limits.max_connections)" in text
        refusal_lines = [line for line in text.splitlines() if "connection refused" in line]
        assert len(refusal_lines) <= 4  # one line per flood, not one per connection
        assert "Traceback" not in text
        assert gw.alive()


@contextmanager
def slowloris(port: int, count: int, source: str) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        yield [stack.enter_context(connect(port, source)) for _ in range(count)]


def trickle(sockets: list[socket.socket], closed: set[int], stop: threading.Event) -> None:
    """One header byte a second on every connection, until the gateway has closed them all
    (or 60 rounds): a head of 1000 bytes would take over 16 minutes."""
    head = b"POST /ipp/print HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 1000
    for position in range(60):
        for index, sock in enumerate(sockets):
            if index in closed:
                continue
            try:
                sock.sendall(head[position : position + 1])
                if answered_or_closed([sock], 0.0):
                    closed.add(index)
            except OSError:
                closed.add(index)
        if len(closed) == len(sockets) or stop.wait(1.0):
            return


def test_slowloris_connections_are_closed_at_the_head_deadline(tmp_path: Path) -> None:
    gw = gateway(tmp_path, "[limits]\nheader_timeout = 2\n")
    with gw, slowloris(gw.port, 50, "127.0.0.2") as sockets:
        closed: set[int] = set()
        stop = threading.Event()
        worker = threading.Thread(target=trickle, args=(sockets, closed, stop))
        worker.start()
        try:
            job = submit(gw.port, b"printed among slow clients\n", name="slowloris")
            assert job > 0
        finally:
            worker.join(timeout=120)
            stop.set()
        assert len(closed) == 50  # well before 60 rounds could send a whole head
        answers = set()
        for sock in sockets:
            try:
                answers.add(sock.recv(12))
            except OSError:
                answers.add(b"reset")
        assert answers <= {b"HTTP/1.1 408", b"", b"reset"}
        text = log_text(gw)
        assert "request head not complete within 2 s, closing" in text
        assert "Traceback" not in text


def refused_before_parsing(port: int, source: str) -> bool:
    """A whole valid request from `source`: True if the gateway closes without a byte."""
    with connect(port, source) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            return sock.recv(64) == b""
        except ConnectionResetError:
            return True


def test_allow_list_refuses_loopback_outside_it(tmp_path: Path) -> None:
    # 127.0.0.1 stays allowed so that the test can see the gateway start; 127.0.0.2 is the
    # loopback client outside the list. (Keys without a table go into [server].)
    with gateway(tmp_path, 'allow = ["10.0.0.0/8", "127.0.0.1/32"]') as gw:
        assert refused_before_parsing(gw.port, "127.0.0.2")
        assert submit(gw.port, b"allowed\n") > 0
        log = log_text(gw)
        assert re.search(r"127\.0\.0\.2:\d+: connection refused: not allowed by server\.allow",
                         log)
        assert "allowed: 10.0.0.0/8, 127.0.0.1/32; denied: none" in log
        assert "Traceback" not in log


def test_deny_wins_over_the_default_that_serves_loopback(tmp_path: Path) -> None:
    with gateway(tmp_path, 'deny = ["127.0.0.3"]') as gw:
        assert refused_before_parsing(gw.port, "127.0.0.3")
        assert not refused_before_parsing(gw.port, "127.0.0.2")  # loopback, by default
        assert submit(gw.port, b"allowed\n") > 0
        log = log_text(gw)
        assert re.search(r"127\.0\.0\.3:\d+: connection refused: denied by server\.deny", log)
        assert "Traceback" not in log
