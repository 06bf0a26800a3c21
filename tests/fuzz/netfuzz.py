"""A network fuzzer for a running gateway on loopback: mutated IPP requests (of real
Get-Printer-Attributes, Print-Job, Get-Jobs, Create-Job and Send-Document requests) and
malformed HTTP (bad chunking, huge headers, bad Content-Length, pipelining garbage), in
bounded batches; after each batch a clean Get-Printer-Attributes must still be answered.

Blocking sockets, one connection per request, the sending side half-closed so that the
gateway sees the end of every request; seeded `random.Random`, so a run can be replayed.
"""

from __future__ import annotations

import re
import socket
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

from ippwire.enums import Status
from tests.fuzz.mutate import EXTREMES
from tests.fuzz.seeds import SMALL_DOCUMENT, ipp_length_fields, ipp_requests

LOOPBACK = "127.0.0.1"
# Statuses the gateway documents for hostile input: HTTP 501 for a Transfer-Encoding it does
# not implement; IPP server-error-operation-not-supported for an unknown operation code and
# server-error-version-not-supported for a version it does not speak; busy and
# not-accepting-jobs and too-many-jobs when its limits refuse a job.
DOCUMENTED_HTTP_5XX = frozenset({501})
DOCUMENTED_IPP_5XX = frozenset({Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED,
                                Status.SERVER_ERROR_VERSION_NOT_SUPPORTED,
                                Status.SERVER_ERROR_BUSY, Status.SERVER_ERROR_NOT_ACCEPTING_JOBS,
                                Status.SERVER_ERROR_TOO_MANY_JOBS})
_STATUS_LINE = re.compile(rb"(?:^|\r\n\r\n|\n)HTTP/1\.[01] (\d{3}) ")
MAX_RESPONSE = 1 << 20


@dataclass
class Report:
    requests: int = 0
    batches: int = 0
    http_statuses: Counter[int] = field(default_factory=Counter)
    ipp_server_errors: Counter[int] = field(default_factory=Counter)
    no_answer: int = 0  # closed (or timed out) without a status line: allowed for garbage
    unanswered_checks: list[str] = field(default_factory=list)  # the failed health checks
    samples: dict[str, bytes] = field(default_factory=dict)  # a request per unexpected 5xx

    @property
    def undocumented_5xx(self) -> dict[str, int]:
        found = {f"HTTP {code}": count for code, count in self.http_statuses.items()
                 if code >= 500 and code not in DOCUMENTED_HTTP_5XX}
        found.update({f"IPP {_status_name(code)}": count
                      for code, count in self.ipp_server_errors.items()
                      if code not in DOCUMENTED_IPP_5XX})
        return found

    def summary(self) -> str:
        http = ", ".join(f"{code}: {count}" for code, count in sorted(self.http_statuses.items()))
        ipp = ", ".join(f"{_status_name(code)}: {count}"
                        for code, count in sorted(self.ipp_server_errors.items())) or "none"
        return (f"{self.requests} requests in {self.batches} batches; HTTP statuses {{{http}}}; "
                f"no status line {self.no_answer}; IPP server errors {{{ipp}}}; "
                f"undocumented 5xx {self.undocumented_5xx or 'none'}; "
                f"failed health checks {len(self.unanswered_checks)}")


def _status_name(code: int) -> str:
    try:
        return Status(code).name.lower().replace("_", "-")
    except ValueError:
        return f"0x{code:04x}"


def http_post(body: bytes, *, path: bytes = b"/ipp/print", chunked: bool = False,
              extra: bytes = b"") -> bytes:
    head = b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/ipp\r\n" % (
        path, LOOPBACK.encode())
    if chunked:
        return head + extra + b"Transfer-Encoding: chunked\r\n\r\n" + \
            b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return head + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


class Mutator:
    """Mutations of IPP messages and of HTTP requests, from one seeded random source."""

    def __init__(self, rng: Random, printer_uri: str) -> None:
        self.rng = rng
        built = ipp_requests(printer_uri)
        self.ipp = [built["get-printer-attributes"], built["get-jobs"], built["create-job"],
                    built["print-job"] + SMALL_DOCUMENT, built["send-document"] + SMALL_DOCUMENT]
        self.fields = [ipp_length_fields(message) for message in self.ipp]
        self.malformed: list[Callable[[], bytes]] = [
            self.bad_chunking, self.huge_header, self.many_headers, self.bad_content_length,
            self.pipelined_garbage, self.truncated, self.noise, self.bad_request_line]

    def ipp_message(self) -> bytes:
        rng = self.rng
        index = rng.randrange(len(self.ipp))
        data = bytearray(self.ipp[index])
        if rng.random() < 0.5:  # a length field at an extreme, while it is still where it was
            offset, width = rng.choice(self.fields[index])
            value = rng.choice(EXTREMES) % (1 << (8 * width))
            data[offset : offset + width] = value.to_bytes(width, "big")
        for _ in range(rng.randint(0 if data != self.ipp[index] else 1, 4)):
            self._mutate(data)
        return bytes(data[: 64 * 1024])

    def _mutate(self, data: bytearray) -> None:
        rng = self.rng
        at = rng.randrange(max(1, len(data)))
        kind = rng.randrange(7)
        if kind == 0 and data:
            data[at] ^= 1 << rng.randrange(8)
        elif kind == 1 and data:
            data[at] = rng.choice((0x00, 0x03, 0x10, 0x34, 0x37, 0x4A, 0x7F, 0xFF))
        elif kind == 2:
            del data[at:]
        elif kind == 3:
            del data[at : at + rng.randint(1, 16)]
        elif kind == 4:
            data[at:at] = rng.randbytes(rng.randint(1, 16))
        elif kind == 5 and data:  # a repeated piece: many attributes, groups or values
            data[at:at] = bytes(data[at : at + rng.randint(1, 64)]) * rng.randint(2, 300)
        elif kind == 6 and len(data) >= 8:  # the header: version, operation, request-id
            offset = rng.choice((0, 2, 4))
            struct.pack_into(">H", data, offset, rng.choice(EXTREMES) & 0xFFFF)

    def request(self) -> bytes:
        """The next request: mostly mutated IPP in valid HTTP, else malformed HTTP."""
        if self.rng.random() < 0.7:
            return http_post(self.ipp_message(), chunked=self.rng.random() < 0.2)
        return self.rng.choice(self.malformed)()

    def bad_chunking(self) -> bytes:
        rng = self.rng
        body = self.ipp[0]
        head = (b"POST /ipp/print HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/ipp\r\nTransfer-Encoding: chunked\r\n\r\n")
        bad = rng.choice([
            b"zz\r\n" + body + b"\r\n0\r\n\r\n",
            b"%x\r\n" % (len(body) + 5) + body + b"\r\n0\r\n\r\n",
            b"%x\r\n" % len(body) + body + b"XX0\r\n\r\n",
            b"ffffffffffffffffffff\r\n" + body,
            b"%x;" % len(body) + b"e" * 20000 + b"\r\n" + body + b"\r\n0\r\n\r\n",
            b"%x\r\n" % len(body) + body + b"\r\n0\r\n" + b"X-T: v\r\n" * 3000 + b"\r\n",
            b"-1\r\n" + body,
            b"%x\n" % len(body) + body + b"\n0\n\n",
        ])
        return head + bad

    def huge_header(self) -> bytes:
        size = self.rng.choice((8 * 1024, 17 * 1024, 64 * 1024, 256 * 1024))
        return http_post(self.ipp[0], extra=b"X-Big: " + b"a" * size + b"\r\n")

    def many_headers(self) -> bytes:
        count = self.rng.choice((100, 1000, 5000))
        return http_post(self.ipp[0], extra=b"".join(b"X-H%d: v\r\n" % n for n in range(count)))

    def bad_content_length(self) -> bytes:
        body = self.ipp[0]
        head = b"POST /ipp/print HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ipp\r\n"
        length = self.rng.choice([b"-1", b"abc", b"1e3", b"99999999999999999999999",
                                  b"%d" % (len(body) + 100), b"%d" % (len(body) - 10),
                                  b"%d, %d" % (len(body), len(body) + 1), b"0x10", b""])
        twice = b"Content-Length: 3\r\n" if self.rng.random() < 0.2 else b""
        return head + twice + b"Content-Length: " + length + b"\r\n\r\n" + body

    def pipelined_garbage(self) -> bytes:
        good = http_post(self.ipp[0])
        garbage = self.rng.choice([self.rng.randbytes(self.rng.randint(1, 300)),
                                   b"GET / HTTP/1.1\r\n\r\n", b"\r\n\r\n\r\n",
                                   http_post(self.ipp_message())[: self.rng.randint(1, 200)]])
        return good * self.rng.randint(1, 3) + garbage

    def truncated(self) -> bytes:
        request = http_post(self.ipp_message(), chunked=self.rng.random() < 0.5)
        return request[: self.rng.randrange(1, len(request))]

    def noise(self) -> bytes:
        return self.rng.randbytes(self.rng.randint(1, 2048))

    def bad_request_line(self) -> bytes:
        return self.rng.choice([
            b"POST /ipp/print HTTP/9.9\r\nHost: h\r\n\r\n",
            b"POST ipp/print HTTP/1.1\r\nHost: h\r\n\r\n",
            b"POST /ipp/print\r\nHost: h\r\n\r\n",
            b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
            b"BREW /ipp/print HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
            b"POST /ipp/print HTTP/1.1\r\nHost: h\r\nHost: i\r\nContent-Length: 0\r\n\r\n",
            b"POST /ipp/print HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\n\r\n",
        ])


def exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send `data`, half-close, read what comes back until the gateway closes."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the gateway closed early (e.g. a 431 sent before the body)
            pass
        received = bytearray()
        try:
            while len(received) < MAX_RESPONSE and (piece := sock.recv(65536)):
                received += piece
        except OSError:  # reset, or the timeout: whatever arrived is the answer
            pass
        return bytes(received)


def ipp_status(response: bytes) -> int | None:
    """The IPP status code of a single HTTP response carrying IPP, if it is one."""
    end = response.find(b"\r\n\r\n")
    if end < 0 or b"application/ipp" not in response[:end].lower():
        return None
    body = response[end + 4 :]
    if body[:2] == b"0\r\n" or b"transfer-encoding: chunked" in response[:end].lower():
        line_end = body.find(b"\r\n")
        body = body[line_end + 2 :] if line_end >= 0 else b""
    return int.from_bytes(body[2:4], "big") if len(body) >= 8 else None


def record(report: Report, request: bytes, response: bytes) -> None:
    report.requests += 1
    statuses = [int(code) for code in _STATUS_LINE.findall(response)]
    if not statuses:
        report.no_answer += 1
    for code in statuses:
        report.http_statuses[code] += 1
        if code >= 500 and code not in DOCUMENTED_HTTP_5XX:
            report.samples.setdefault(f"HTTP {code}", request[:4096])
    status = ipp_status(response)
    if status is not None and status >= 0x0500:
        report.ipp_server_errors[status] += 1
        if status not in DOCUMENTED_IPP_5XX:
            report.samples.setdefault(f"IPP 0x{status:04x}", request[:4096])


def health_check(port: int, printer_uri: str) -> str | None:
    """None if a clean Get-Printer-Attributes is answered with successful-ok; else why not."""
    request = http_post(ipp_requests(printer_uri)["get-printer-attributes"])
    try:
        response = exchange(port, request, timeout=30.0)
    except OSError as error:
        return f"no connection: {error}"
    if not response.startswith(b"HTTP/1.1 200 "):
        return f"answered {response[:80]!r}"
    status = ipp_status(response)
    return None if status == 0 else f"IPP status {status}"


def run(port: int, requests: int, *, seed: int = 0, batch: int = 200,
        printer_uri: str | None = None,
        after_batch: Callable[[Report], None] | None = None) -> Report:
    """Send `requests` fuzzed requests in batches of `batch`, checking after each batch."""
    uri = printer_uri or f"ipp://{LOOPBACK}:{port}/ipp/print"
    mutator = Mutator(Random(seed), uri)
    report = Report()
    while report.requests < requests:
        for _ in range(min(batch, requests - report.requests)):
            request = mutator.request()
            try:
                response = exchange(port, request)
            except OSError:  # refused: the health check below says whether it is down
                response = b""
            record(report, request, response)
        report.batches += 1
        problem = health_check(port, uri)
        if problem is not None:
            report.unanswered_checks.append(f"after request {report.requests}: {problem}")
        if after_batch is not None:
            after_batch(report)
    return report


def tracebacks(log: Path, start: int = 0) -> list[str]:
    """Each traceback in the gateway log after byte `start`: the log line before it and its
    last line (the exception)."""
    lines = log.read_bytes()[start:].decode("utf-8", "replace").splitlines()
    found = []
    for index, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            end = index + 1
            while end < len(lines) and lines[end].startswith(" "):
                end += 1
            before = lines[index - 1] if index else ""
            found.append(f"{before} | {lines[end] if end < len(lines) else ''}")
    return found
