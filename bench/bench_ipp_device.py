"""An IPP printer as the device: the time for a 1 MiB job to reach the device's spool, through
our gateway (its ipp:// transport) and through CUPS's own `ipp` backend, to the same device in
the same run.

    .venv/bin/python bench/bench_ipp_device.py [--rounds 10] [--size 1048576]   # as root

The device is ippeveprinter taking only application/postscript and keeping every document in
its spool directory (`-k`), which it writes as the data arrives. Both servers get the same
1 MiB PostScript document by the same Print-Job over HTTP from this script, one job at a time:
- the gateway: one printer with the raw driver (the document passes through) and the device
  `ipp://127.0.0.1:PORT/ipp/print` (our transport: Get-Printer-Attributes, Create-Job,
  Send-Document);
- CUPS: a private cupsd with a raw queue whose device is the same URI, so cupsd runs no
  filter and its `ipp` backend sends the spooled file as it came (Validate-Job, Create-Job,
  Send-Document).
Per job: *to device*, from the Print-Job sent until the device's new file holds the whole
document (the spool directory read every ms); *answered*, until the server's answer to the
Print-Job. The next job waits until both servers call the last one completed, so jobs never
overlap. The order alternates (ABBA) so that noise on the shared cores loads both alike; one
warm-up job each is not counted (lazy imports, the first connection).

Needs cupsd, ippeveprinter, dbus-daemon (scripts/install-peers.sh) and root (cupsd's private
instance, as the tests run it). Everything listens on 127.0.0.1 at free ports; each process is
stopped by PID and the temporary directory removed at the end.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ippwire.enums import GroupTag, JobState, Operation, ValueTag
from ippwire.model import Message
from ippwire.reader import decode_message
from ippwire.writer import encode_message, request
from tests.peers.cupsd import Cupsd, running_cupsd
from tests.peers.gateway_proc import (
    GatewayProcess,
    PrinterTable,
    start_configured_gateway,
)
from tests.peers.ippeveprinter import IppEvePrinter, running_ippeveprinter
from tests.peers.procs import LOOPBACK

POSTSCRIPT = "application/postscript"
QUEUE = "dev"
SPOOL_POLL = 0.001
JOB_TIMEOUT = 60.0
# The gateway asks the device about its job every 0.1 s (default 1 s) only so that rounds
# follow each other sooner: the time measured ends before the first poll.
GATEWAY_POLL = "?poll=0.1"


@dataclass
class Server:
    """Where a job goes: the HTTP path of the queue and its printer-uri."""

    name: str
    port: int
    path: str
    to_device: list[float] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)

    @property
    def printer_uri(self) -> str:
        return f"ipp://{LOOPBACK}:{self.port}{self.path}"

    def exchange(self, message: Message, document: bytes = b"") -> Message:
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=JOB_TIMEOUT)
        try:
            connection.request("POST", self.path, body=encode_message(message) + document,
                               headers={"Content-Type": "application/ipp"})
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"{self.name}: HTTP {response.status}: {body[:200]!r}")
        answer, _ = decode_message(body)
        return answer

    def print_job(self, document: bytes) -> int:
        answer = self.exchange(request(
            Operation.PRINT_JOB, printer_uri=self.printer_uri, user="bench",
            attrs={"job-name": (ValueTag.NAME, "bench"),
                   "document-format": (ValueTag.MIME_MEDIA_TYPE, POSTSCRIPT)}), document)
        return _int_attribute(answer, "job-id", self.name)

    def job_state(self, job_id: int) -> int:
        answer = self.exchange(request(
            Operation.GET_JOB_ATTRIBUTES, printer_uri=self.printer_uri, user="bench",
            attrs={"job-id": (ValueTag.INTEGER, job_id),
                   "requested-attributes": (ValueTag.KEYWORD, "job-state")}))
        return _int_attribute(answer, "job-state", self.name)


def _int_attribute(answer: Message, name: str, server: str) -> int:
    group = answer.group(GroupTag.JOB)
    found = group.get(name) if answer.code == 0 and group is not None else None
    if found is None or not isinstance(found.value, int):
        raise RuntimeError(f"{server}: no {name} in {answer}")
    return found.value


def postscript_document(size: int) -> bytes:
    """`size` bytes of PostScript: a header, comment lines, an empty page."""
    head, tail = b"%!PS-Adobe-3.0\n", b"showpage\n"
    line = b"% " + b"0123456789abcdef" * 4 + b"\n"
    body = (line * (size // len(line) + 1))[: size - len(head) - len(tail)]
    return head + body + tail


def wait_new_document(device: IppEvePrinter, before: set[int], size: int) -> int:
    """The device's job-id of its new kept document, once that holds `size` bytes."""
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        for job_id, path in device.kept_documents().items():
            if job_id not in before and path.stat().st_size >= size:
                return job_id
        if time.monotonic() > deadline:
            found = {job_id: path.stat().st_size for job_id, path in
                     device.kept_documents().items()}
            raise RuntimeError(f"no complete new document in {device.spool}: {found}")
        time.sleep(SPOOL_POLL)


def one_job(server: Server, device: IppEvePrinter, document: bytes, record: bool) -> None:
    before = set(device.kept_documents())
    start = time.perf_counter()
    job_id = server.print_job(document)
    answered = time.perf_counter() - start
    try:
        device_job = wait_new_document(device, before, len(document))
    except RuntimeError as exc:
        raise RuntimeError(f"{server.name}: job {job_id}: {exc}") from None
    to_device = time.perf_counter() - start
    if device.kept_documents()[device_job].read_bytes() != document:
        raise RuntimeError(f"{server.name}: the device got other bytes (its job {device_job})")
    deadline = time.monotonic() + JOB_TIMEOUT
    while (state := server.job_state(job_id)) != JobState.COMPLETED:
        if state in (JobState.CANCELED, JobState.ABORTED) or time.monotonic() > deadline:
            raise RuntimeError(f"{server.name}: job {job_id} ended in state {state}")
        time.sleep(0.01)
    for path in device.spool.glob(f"{device_job}-*"):
        path.unlink()  # the next job's wait reads a short directory
    if record:
        server.to_device.append(to_device * 1000)
        server.answered.append(answered * 1000)


@contextmanager
def peers(tmp: Path) -> Iterator[tuple[IppEvePrinter, GatewayProcess, Cupsd]]:
    with ExitStack() as stack:
        device = stack.enter_context(running_ippeveprinter(
            tmp / "device", formats=POSTSCRIPT, keep=True))
        cupsd = stack.enter_context(running_cupsd())
        cupsd.add_raw_queue(QUEUE, device.printer_uri)
        gateway = stack.enter_context(start_configured_gateway(
            tmp / "gateway",
            (PrinterTable.on_device(QUEUE, device.printer_uri + GATEWAY_POLL),),
            log_level="info"))
        yield device, gateway, cupsd


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(servers: Sequence[Server], size: int, rounds: int) -> None:
    print(f"\n{size / 1048576:g} MiB PostScript job to ippeveprinter's spool, {rounds} jobs "
          "per path, one at a time (ABBA), ms")
    print(f"{'path':<28} | {'to device':^27} | {'answered':^13} | to device")
    print(f"{'':<28} | {'p50':>6} {'p90':>6} {'min':>6} {'max':>6} | {'p50':>6} {'p90':>6} |"
          "   vs CUPS")
    cups = statistics.median(servers[0].to_device)
    for server in servers:
        t, a = server.to_device, server.answered
        ratio = statistics.median(t) / cups
        print(f"{server.name:<28} | {statistics.median(t):6.1f} {percentile(t, 0.9):6.1f} "
              f"{min(t):6.1f} {max(t):6.1f} | {statistics.median(a):6.1f} "
              f"{percentile(a, 0.9):6.1f} | {ratio:8.2f}x")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="jobs per path (counted)")
    parser.add_argument("--size", type=int, default=1 << 20, help="document bytes")
    parser.add_argument("--tmp", type=Path, default=None, help="parent of the work directory")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("run as root: the private cupsd runs as root, as the tests run it")
    document = postscript_document(args.size)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ipp-device-", dir=args.tmp))
    try:
        with peers(tmp) as (device, gateway, cupsd):
            servers = [Server("CUPS ipp backend", cupsd.port, f"/printers/{QUEUE}"),
                       Server("gateway ipp:// transport", gateway.port, f"/ipp/print/{QUEUE}")]
            for server in servers:
                one_job(server, device, document, record=False)
            for number in range(args.rounds):
                order = servers if number % 4 in (0, 3) else servers[::-1]
                for server in order:
                    one_job(server, device, document, record=True)
        report(servers, args.size, args.rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
