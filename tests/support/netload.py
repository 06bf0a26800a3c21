"""The network fuzzer at volume: the mutations of tests/fuzz/netfuzz.py, generated once into a
pool and replayed over persistent, pipelined connections, several at a time, so that a run of
100,000 requests costs the gateway's time rather than the client's.

Each connection carries a few well-framed requests (valid HTTP around a mutated IPP message,
which the gateway answers and keeps the connection for), sometimes ends with one malformed
request (bad chunking, huge or many headers, bad Content-Length, garbage, a truncation: these
end the connection), and is then half-closed and read until the gateway closes it. One
thread, non-blocking sockets and a selector: the client sends and reads at once, so a pipeline
whose answers fill the socket buffers cannot deadlock. Every response is split out of the
stream and checked: its HTTP status and, for IPP, its status code. A seeded `Random` picks
everything, so a run can be replayed.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random

from tests.fuzz.netfuzz import (
    DOCUMENTED_HTTP_5XX,
    DOCUMENTED_IPP_5XX,
    LOOPBACK,
    Mutator,
    Report,
    health_check,
    http_post,
)

RECEIVE_LIMIT = 32 << 20  # per connection; more means the gateway answers without end
CONNECTION_TIMEOUT = 60.0  # a connection's whole life, so that every wait is bounded
SEND_SLICE = 256 * 1024
IPP_HEADER_SIZE = 8  # version, operation or status, request-id


@dataclass(frozen=True)
class Pool:
    """Requests generated once: `framed` keep the connection open, `closing` end it."""

    framed: tuple[bytes, ...]
    closing: tuple[bytes, ...]

    @classmethod
    def generate(cls, printer_uri: str, seed: int, framed: int = 3000,
                 closing: int = 1000) -> Pool:
        mutator = Mutator(Random(seed), printer_uri)
        rng = mutator.rng
        keep: list[bytes] = []
        end: list[bytes] = []
        while len(keep) < framed:
            message = mutator.ipp_message()
            # Shorter than an IPP header: the gateway answers 400 and closes.
            (keep if len(message) >= IPP_HEADER_SIZE else end).append(
                http_post(message, chunked=rng.random() < 0.2))
        end += [rng.choice(mutator.malformed)() for _ in range(closing)]
        return cls(tuple(keep), tuple(end))


@dataclass
class Response:
    status: int
    ipp_status: int | None


def split_responses(data: bytes) -> tuple[list[Response], bytes]:
    """The complete HTTP responses at the start of `data` (1xx interim answers skipped), and
    what follows them that is not one: empty when the gateway's output was well formed."""
    responses: list[Response] = []
    at = 0
    while at < len(data):
        end = data.find(b"\r\n\r\n", at)
        if end < 0 or not data.startswith(b"HTTP/1.", at):
            break
        head = data[at:end].split(b"\r\n")
        try:
            status = int(head[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            break
        fields = {}
        for line in head[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        body_start = end + 4
        if 100 <= status < 200:
            at = body_start
            continue
        if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            body, after = _dechunk(data, body_start)
            if after < 0:
                break
        else:
            try:
                length = int(fields.get(b"content-length", b"0"))
            except ValueError:
                break
            after = body_start + length
            if after > len(data):
                break
            body = data[body_start:after]
        ipp = (int.from_bytes(body[2:4], "big")
               if fields.get(b"content-type", b"").lower() == b"application/ipp"
               and len(body) >= 8 else None)
        responses.append(Response(status, ipp))
        at = after
    return responses, data[at:]


def _dechunk(data: bytes, at: int) -> tuple[bytes, int]:
    """A chunked body from `at`, and where it ends (-1: incomplete)."""
    body = bytearray()
    while True:
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            return b"", -1
        try:
            size = int(data[at:line_end].split(b";")[0], 16)
        except ValueError:
            return b"", -1
        at = line_end + 2
        if size == 0:
            trailer_end = data.find(b"\r\n", at)
            return (bytes(body), trailer_end + 2) if trailer_end >= 0 else (b"", -1)
        if at + size + 2 > len(data):
            return b"", -1
        body += data[at : at + size]
        at += size + 2


@dataclass
class _Connection:
    sock: socket.socket
    requests: list[bytes]
    framed: int  # how many of `requests`, from the first, keep the connection open
    data: memoryview
    ends: list[int]  # where each request ends in `data`
    deadline: float
    sent: int = 0
    writing: bool = True
    received: bytearray = field(default_factory=bytearray)


@dataclass
class LoadStats:
    """What the volume run adds to the fuzzer's `Report`."""

    connections: int = 0
    framed_sent: int = 0
    framed_answered: int = 0  # responses matched to well-framed requests
    reset: int = 0  # connections the gateway reset (allowed after a malformed request)
    timed_out: int = 0
    garbled: int = 0  # connections whose output did not split into responses


class LoadRunner:
    """Sends a `Pool` to a gateway on `port`, `parallel` connections at a time."""

    def __init__(self, port: int, pool: Pool, *, seed: int = 0, parallel: int = 4,
                 pipeline: int = 32, closing_share: float = 0.3) -> None:
        self.port = port
        self.pool = pool
        self.rng = Random(seed)
        self.parallel = parallel
        self.pipeline = pipeline
        self.closing_share = closing_share
        self.report = Report()
        self.stats = LoadStats()

    def _requests(self) -> tuple[list[bytes], int]:
        rng = self.rng
        chosen = rng.choices(self.pool.framed, k=rng.randint(1, self.pipeline))
        framed = len(chosen)
        if rng.random() < self.closing_share:
            chosen.append(rng.choice(self.pool.closing))
        return chosen, framed

    def _open(self, selector: selectors.BaseSelector, requests: list[bytes],
              framed: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex((LOOPBACK, self.port))
        ends, total = [], 0
        for request in requests:
            total += len(request)
            ends.append(total)
        connection = _Connection(sock, requests, framed, memoryview(b"".join(requests)), ends,
                                 time.monotonic() + CONNECTION_TIMEOUT)
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, connection)
        self.stats.connections += 1

    def send(self, count: int) -> None:
        """Send `count` more requests (the last connection may carry a few more)."""
        queued = 0
        with selectors.DefaultSelector() as selector:
            while queued < count or selector.get_map():
                while queued < count and len(selector.get_map()) < self.parallel:
                    requests, framed = self._requests()
                    queued += len(requests)
                    self._open(selector, requests, framed)
                for key, events in selector.select(timeout=1.0):
                    self._step(selector, key.data, events)
                now = time.monotonic()
                for key in list(selector.get_map().values()):
                    if now > key.data.deadline:
                        self.stats.timed_out += 1
                        self._finish(selector, key.data)

    def _step(self, selector: selectors.BaseSelector, connection: _Connection,
              events: int) -> None:
        sock = connection.sock
        if events & selectors.EVENT_WRITE and connection.writing:
            try:
                connection.sent += sock.send(
                    connection.data[connection.sent : connection.sent + SEND_SLICE])
            except BlockingIOError:
                pass
            except OSError:  # the gateway closed after a malformed request: read its answer
                self._stop_writing(selector, connection, shut=False)
            else:
                if connection.sent == len(connection.data):
                    self._stop_writing(selector, connection, shut=True)
        if events & selectors.EVENT_READ:
            try:
                piece = sock.recv(1 << 18)
            except BlockingIOError:
                return
            except OSError:
                self.stats.reset += 1
                piece = b""
            connection.received += piece
            if not piece or len(connection.received) > RECEIVE_LIMIT:
                self._finish(selector, connection)

    def _stop_writing(self, selector: selectors.BaseSelector, connection: _Connection,
                      shut: bool) -> None:
        connection.writing = False
        selector.modify(connection.sock, selectors.EVENT_READ, connection)
        if shut:
            with contextlib.suppress(OSError):  # the gateway closed first: read what it said
                connection.sock.shutdown(socket.SHUT_WR)

    def _finish(self, selector: selectors.BaseSelector, connection: _Connection) -> None:
        selector.unregister(connection.sock)
        connection.sock.close()
        written = sum(1 for end in connection.ends if end <= connection.sent)
        responses, rest = split_responses(bytes(connection.received))
        # What the gateway read: the answered requests and the one that ended the connection
        # without an answer, not those it discarded after closing.
        delivered = min(written, len(responses) + 1)
        report, stats = self.report, self.stats
        report.requests += delivered
        if rest:
            stats.garbled += 1
            report.samples.setdefault("unparsable response", bytes(rest[:300]))
        stats.framed_sent += min(written, connection.framed)
        stats.framed_answered += min(len(responses), connection.framed)
        report.no_answer += max(0, delivered - len(responses))
        for index, response in enumerate(responses):
            # A pipelined_garbage request can draw several answers: they go to the last one.
            request = connection.requests[min(index, len(connection.requests) - 1)]
            report.http_statuses[response.status] += 1
            if response.status >= 500 and response.status not in DOCUMENTED_HTTP_5XX:
                report.samples.setdefault(f"HTTP {response.status}", request[:4096])
            if response.ipp_status is not None and response.ipp_status >= 0x0500:
                report.ipp_server_errors[response.ipp_status] += 1
                if response.ipp_status not in DOCUMENTED_IPP_5XX:
                    report.samples.setdefault(f"IPP 0x{response.ipp_status:04x}",
                                              request[:4096])


def run(port: int, requests: int, *, seed: int = 0, batch: int = 5000, parallel: int = 4,
        pipeline: int = 32, pool: Pool | None = None,
        after_batch: Callable[[LoadRunner], None] | None = None) -> LoadRunner:
    """Send at least `requests` fuzzed requests in batches of about `batch`; after each batch
    a clean Get-Printer-Attributes on a new connection must be answered."""
    uri = f"ipp://{LOOPBACK}:{port}/ipp/print"
    runner = LoadRunner(port, pool or Pool.generate(uri, seed), seed=seed, parallel=parallel,
                        pipeline=pipeline)
    report = runner.report
    # Bounded: a round per batch, and as many again for requests the gateway discarded
    # (those pipelined behind one that closed the connection are not counted).
    for _ in range(2 * -(-requests // batch)):
        runner.send(min(batch, requests - report.requests))
        report.batches += 1
        problem = health_check(port, uri)
        if problem is not None:
            report.unanswered_checks.append(f"after request {report.requests}: {problem}")
        if after_batch is not None:
            after_batch(runner)
        if report.requests >= requests:
            break
    return runner
