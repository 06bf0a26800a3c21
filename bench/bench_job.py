#!/usr/bin/env python3
"""Job latency and persistence per checkout: a 1 MiB job through a real gateway, and the time
from a job's state change to its record on disk.

    .venv/bin/python bench/bench_job.py --checkout /work/baseline --checkout /work/main

Run from any directory; without --checkout it measures the repository it is in. The gateway
code of each checkout runs in its own processes (cwd and PYTHONPATH set to the checkout), so
two versions never mix in one interpreter; this script only talks to them.

1. Latency: one gateway per checkout (`python -m gateway run`, a raw file printer), all
   started at once; the 1 MiB Print-Jobs go to them in turn, one at a time, over one
   keep-alive connection each, so that load from other work on the machine falls on every
   checkout alike. Per job: the time to the Print-Job response (the document spooled and
   fsynced, the job on disk) and to job-state completed (asked with Get-Job-Attributes every
   few ms). Then throughput: N jobs sent back to back, jobs/s until the last one completed
   (rounds in ABBA order, best round shown).
2. Persistence, in a child process per checkout: a `System` on a temporary spool driven
   through `dispatch` (no sockets), M jobs from C concurrent clients until all completed.
   Every `os.fsync` is timed and counted by thread (the Trio thread or another); the new
   code's `JobStore.persist_latency` gives the time from a change to its write, and for
   the old code, which writes on the spot, the duration of each `Spool.save` is that time.

Temporary files go under --tmp (default: the system's temp directory; it must be a real
disk, not tmpfs, or fsync costs nothing). The machine is shared: read the ratios, and the
load average printed with them.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.peers.gateway_proc import wait_until_serving  # noqa: E402
from tests.peers.procs import (  # noqa: E402
    LOOPBACK,
    free_port,
    spawn_logged,
    stop_process,
    wait_for_port,
)

MIB = 1 << 20
PRINTER = "bench"
FORMAT = "application/octet-stream"
JOB_COMPLETED, JOB_CANCELED, JOB_ABORTED = 9, 7, 8
START_TIMEOUT = 30.0
JOB_TIMEOUT = 60.0  # one job, accepted to completed
POLL = 0.002  # seconds between two Get-Job-Attributes while a job prints
RESULT = "RESULT "


# --- a tiny IPP client: Print-Job, Get-Job-Attributes, and the replies' integers -------

def ipp_attribute(tag: int, name: str, value: bytes) -> bytes:
    encoded = name.encode()
    return (struct.pack(">BH", tag, len(encoded)) + encoded
            + struct.pack(">H", len(value)) + value)


def ipp_request(operation: int, request_id: int, printer_uri: str,
                extra: Sequence[bytes]) -> bytes:
    return b"".join([
        struct.pack(">BBHI", 2, 0, operation, request_id),
        b"\x01",  # operation-attributes-tag
        ipp_attribute(0x47, "attributes-charset", b"utf-8"),
        ipp_attribute(0x48, "attributes-natural-language", b"en"),
        ipp_attribute(0x45, "printer-uri", printer_uri.encode()),
        ipp_attribute(0x42, "requesting-user-name", b"bench"),
        *extra,
        b"\x03",  # end-of-attributes-tag
    ])


def print_job(printer_uri: str, request_id: int, document: bytes) -> bytes:
    return ipp_request(0x0002, request_id, printer_uri, [
        ipp_attribute(0x42, "job-name", f"bench-{request_id}".encode()),
        ipp_attribute(0x49, "document-format", FORMAT.encode())]) + document


def get_job_state(printer_uri: str, request_id: int, job_id: int) -> bytes:
    return ipp_request(0x0009, request_id, printer_uri, [
        ipp_attribute(0x21, "job-id", struct.pack(">i", job_id)),
        ipp_attribute(0x44, "requested-attributes", b"job-state")])


def ipp_integers(payload: bytes) -> tuple[int, dict[str, int]]:
    """The status code and the first value of every integer or enum attribute."""
    status = struct.unpack_from(">H", payload, 2)[0]
    found: dict[str, int] = {}
    offset, name = 8, ""
    while offset < len(payload):
        tag = payload[offset]
        offset += 1
        if tag == 0x03:
            break
        if tag < 0x10:  # the start of a group
            continue
        (length,) = struct.unpack_from(">H", payload, offset)
        name = payload[offset + 2:offset + 2 + length].decode() or name
        offset += 2 + length
        (length,) = struct.unpack_from(">H", payload, offset)
        if tag in (0x21, 0x23) and length == 4:
            found.setdefault(name, struct.unpack_from(">i", payload, offset + 2)[0])
        offset += 2 + length
    return status, found


# --- a gateway process from one checkout -------------------------------------------------

def child_env(checkout: Path, workdir: Path) -> dict[str, str]:
    # Bytecode goes to the work directory: nothing is written into a checkout.
    return dict(os.environ, PYTHONPATH=str(checkout), PYTHONUNBUFFERED="1",
                PYTHONPYCACHEPREFIX=str(workdir.parent / "pycache"))


@dataclass
class Gateway:
    checkout: Path
    workdir: Path
    proc: subprocess.Popen[bytes]
    port: int
    connection: http.client.HTTPConnection
    request_id: int = 0

    @property
    def uri(self) -> str:
        return f"ipp://{LOOPBACK}:{self.port}/ipp/print/{PRINTER}"

    @property
    def output(self) -> Path:
        return self.workdir / "out"

    def post(self, body: bytes) -> dict[str, int]:
        self.connection.request("POST", f"/ipp/print/{PRINTER}", body,
                                {"Content-Type": "application/ipp"})
        response = self.connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"{self.checkout}: HTTP {response.status}")
        status, values = ipp_integers(payload)
        if status >= 0x0100:
            raise RuntimeError(f"{self.checkout}: IPP status {status:#06x}")
        return values

    def next_id(self) -> int:
        self.request_id += 1
        return self.request_id

    def submit(self, document: bytes) -> int:
        return self.post(print_job(self.uri, self.next_id(), document))["job-id"]

    def state(self, job_id: int) -> int:
        return self.post(get_job_state(self.uri, self.next_id(), job_id))["job-state"]

    def wait_completed(self, job_id: int, size: int) -> None:
        deadline = time.monotonic() + JOB_TIMEOUT
        while (state := self.state(job_id)) != JOB_COMPLETED:
            if state in (JOB_CANCELED, JOB_ABORTED) or time.monotonic() > deadline:
                raise RuntimeError(f"{self.checkout}: job {job_id} in state {state}")
            time.sleep(POLL)
        printed = self.output / f"job-{job_id:05d}.prn"
        if printed.stat().st_size != size:
            raise RuntimeError(f"{printed}: {printed.stat().st_size} bytes, not {size}")
        printed.unlink()  # keeps the disk use of a long run at one job

    def stop(self) -> None:
        self.connection.close()
        stop_process(self.proc)


def start_gateway(checkout: Path, workdir: Path, python: str) -> Gateway:
    (workdir / "out").mkdir(parents=True)
    port = free_port()
    argv = [python, "-m", "gateway", "run", "--listen", f"{LOOPBACK}:{port}",
            "--spool", str(workdir / "spool"),
            "--printer", f"{PRINTER}={(workdir / 'out').as_uri()}/,driver=raw,formats={FORMAT}"]
    if os.geteuid() == 0:  # as root it would hand itself to lp, who cannot write here
        argv += ["--user", "root"]
    if "no-dnssd" in (checkout / "gateway" / "cli.py").read_text():
        argv.append("--no-dnssd")  # nothing multicasts on this machine's own network
    log = workdir / "gateway.log"
    proc = spawn_logged(argv, log, env=child_env(checkout, workdir), cwd=checkout)
    started = False
    try:
        wait_for_port(proc, port, log, START_TIMEOUT)
        wait_until_serving(port, START_TIMEOUT)
        started = True
    finally:
        if not started:
            stop_process(proc)
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=JOB_TIMEOUT)
    return Gateway(checkout, workdir, proc, port, connection)


@contextlib.contextmanager
def gateways(checkouts: Sequence[Path], tmp: Path, python: str) -> Iterator[list[Gateway]]:
    running: list[Gateway] = []
    try:
        for index, checkout in enumerate(checkouts):
            running.append(start_gateway(checkout, tmp / f"gateway-{index}", python))
        yield running
    finally:
        for gateway in running:
            gateway.stop()


# --- 1. latency and throughput of 1 MiB jobs ---------------------------------------------

@dataclass
class Latency:
    accept: list[float] = field(default_factory=list)  # seconds to the Print-Job response
    done: list[float] = field(default_factory=list)  # seconds to job-state completed
    throughput: list[float] = field(default_factory=list)  # jobs/s, one per round
    submit_rate: list[float] = field(default_factory=list)  # Print-Jobs answered per second


def one_job(gateway: Gateway, document: bytes, into: Latency | None) -> None:
    start = time.perf_counter()
    job_id = gateway.submit(document)
    accepted = time.perf_counter()
    gateway.wait_completed(job_id, len(document))
    if into is not None:
        into.accept.append(accepted - start)
        into.done.append(time.perf_counter() - start)


def back_to_back(gateway: Gateway, document: bytes, jobs: int, into: Latency) -> None:
    start = time.perf_counter()
    job_ids = [gateway.submit(document) for _ in range(jobs)]
    submitted = time.perf_counter()
    for job_id in job_ids:  # one printer prints them in order
        gateway.wait_completed(job_id, len(document))
    into.submit_rate.append(jobs / (submitted - start))
    into.throughput.append(jobs / (time.perf_counter() - start))


def measure_latency(running: list[Gateway], jobs: int, warmup: int, rounds: int
                    ) -> list[Latency]:
    document = os.urandom(MIB)
    results = [Latency() for _ in running]
    for gateway in running:  # the first jobs pay lazy imports and a cold page cache
        for _ in range(warmup):
            one_job(gateway, document, None)
    for index in range(jobs):
        order = list(range(len(running)))
        if index % 2:
            order.reverse()  # neither checkout always goes first
        for which in order:
            one_job(running[which], document, results[which])
    for round_number in range(rounds):
        order = list(range(len(running)))
        if round_number % 2:
            order.reverse()  # ABBA
        for which in order:
            back_to_back(running[which], document, jobs, results[which])
    return results


# --- 2. state change to persistence, in a child process per checkout ---------------------

CHILD = r"""
import json, os, sys, threading, time
from pathlib import Path
import trio

args = json.loads(sys.argv[1])
workdir = Path(args["workdir"])
import gateway
from gateway.config import Config, PrinterConfig
from gateway.core.spool import Spool
from gateway.core.system import System
from ippwire.enums import Operation, ValueTag
from ippwire.reader import decode_message
from ippwire.writer import encode_message, request
from gateway.server.operations import Endpoint
try:
    from gateway.server.operation_table import dispatch
except ImportError:  # the old code: handlers register themselves when imported
    from gateway.server import ops_jobs, ops_printer
    from gateway.server.operations import dispatch

real_fsync = os.fsync
fsyncs = []  # (on the Trio thread, seconds, what)
recording = False
trio_thread = None

def what(frame):
    name = frame.f_code.co_name
    if "transports" in frame.f_code.co_filename:
        return "output"
    return "document" if name == "finish_document" else "spool record"

def timed_fsync(fd):
    start = time.perf_counter()
    try:
        real_fsync(fd)
    finally:
        if recording:
            fsyncs.append((threading.get_ident() == trio_thread, time.perf_counter() - start,
                           what(sys._getframe(1))))

os.fsync = timed_fsync
saves = []  # the old code: each Spool.save is a change written on the spot
real_save = Spool.save

def timed_save(self, job):
    start = time.perf_counter()
    real_save(self, job)
    if recording:
        saves.append(time.perf_counter() - start)

Spool.save = timed_save

config = Config(spool=workdir / "spool", printers=(PrinterConfig(
    "bench", (workdir / "out").as_uri() + "/", formats=("application/octet-stream",),
    status_interval=0),))
document = os.urandom(args["size"])
lags = []
answers = []  # seconds from a Print-Job's dispatch to its answer

async def submit(system, job_ids):
    async def chunks():
        for start in range(0, len(document), 65536):
            yield document[start:start + 65536]
    message = request(Operation.PRINT_JOB, printer_uri="ipp://localhost:8631/ipp/print/bench",
                      attrs={"document-format": (ValueTag.MIME_MEDIA_TYPE,
                                                 "application/octet-stream")})
    decoded, _ = decode_message(encode_message(message))
    start = time.perf_counter()
    reply, _ = decode_message(await dispatch(system, Endpoint("localhost", 8631), decoded,
                                             chunks))
    if recording:
        answers.append(time.perf_counter() - start)
    assert reply.code < 0x100, reply
    job_ids.append(reply.group(2).get("job-id").value)

async def client(system, job_ids, count):
    for _ in range(count):
        await submit(system, job_ids)

async def ticker():
    while True:  # how late the loop wakes a 1 ms sleeper: how long it was blocked
        start = time.perf_counter()
        await trio.sleep(0.001)
        lags.append(time.perf_counter() - start - 0.001)

async def completed(system, job_ids):
    deadline = time.monotonic() + args["timeout"]
    while not all(system.jobs[job_id].state.is_terminal for job_id in job_ids):
        assert time.monotonic() < deadline, "the jobs did not complete in time"
        await trio.sleep(0.005)
    store = getattr(system, "store", None)
    if store is not None:
        await store.flushed()

async def main():
    global recording, trio_thread
    trio_thread = threading.get_ident()
    system = await System.open(config) if hasattr(System, "open") else System(config)
    store = getattr(system, "store", None)
    async with trio.open_nursery() as nursery:
        await nursery.start(system.run)
        warmup = []  # the first job pays lazy imports: not counted
        await submit(system, warmup)
        await completed(system, warmup)
        if store is not None:
            latency = store.persist_latency
            before = (latency.batches, latency.records, len(latency.samples))
        nursery.start_soon(ticker)
        recording = True
        start = time.perf_counter()
        job_ids = []
        async with trio.open_nursery() as clients:
            share, extra = divmod(args["jobs"], args["clients"])
            for index in range(args["clients"]):
                clients.start_soon(client, system, job_ids, share + (index < extra))
        await completed(system, job_ids)
        elapsed = time.perf_counter() - start
        recording = False
        nursery.cancel_scope.cancel()
    states = sorted({system.jobs[job_id].state.name for job_id in job_ids})
    persist = None if store is None else {
        "batches": latency.batches - before[0], "records": latency.records - before[1],
        "samples": latency.samples[before[2]:]}  # fewer than its 1000: none dropped yet
    return {"gateway": gateway.__file__, "jobs": len(job_ids), "states": states,
            "elapsed": elapsed, "fsyncs": fsyncs, "saves": saves, "persist": persist,
            "lags": lags, "answers": answers}

print("RESULT " + json.dumps(trio.run(main)))
"""


@dataclass
class StoreLatency:
    """The new code's JobStore.persist_latency, as the child saw it at the end."""

    batches: int
    records: int
    samples: list[float]  # seconds from the first change of a batch to the end of its write


@dataclass
class Persistence:
    jobs: int
    elapsed: float
    fsyncs: list[tuple[bool, float, str]]
    saves: list[float]  # the old code: seconds per Spool.save
    store: StoreLatency | None  # None: the old code, which has no store
    lags: list[float]
    answers: list[float]  # seconds from dispatching a Print-Job to its answer


def measure_persistence(checkout: Path, workdir: Path, python: str, jobs: int, clients: int,
                        size: int) -> Persistence:
    workdir.mkdir(parents=True)
    args = {"workdir": str(workdir), "jobs": jobs, "clients": clients, "size": size,
            "timeout": 60.0 + jobs}
    done = subprocess.run([python, "-c", CHILD, json.dumps(args)], cwd=checkout,
                          env=child_env(checkout, workdir), capture_output=True, text=True,
                          timeout=120 + jobs, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{checkout}: the persistence child failed:\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1][len(RESULT):])
    if not Path(result["gateway"]).resolve().is_relative_to(checkout.resolve()):
        raise RuntimeError(f"{checkout}: the child imported {result['gateway']}")
    if result["states"] != ["COMPLETED"]:
        raise RuntimeError(f"{checkout}: jobs ended {result['states']}")
    persist = result["persist"]
    store = None if persist is None else StoreLatency(
        persist["batches"], persist["records"], persist["samples"])
    return Persistence(result["jobs"], result["elapsed"],
                       [(bool(a), float(b), str(c)) for a, b, c in result["fsyncs"]],
                       result["saves"], store, result["lags"], result["answers"])


# --- report ------------------------------------------------------------------------------

def percentile(values: Sequence[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p % of them at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(values: Sequence[float], *ps: float) -> list[float]:
    return [1000 * percentile(values, p) for p in ps]


def ratio(new: float, old: float) -> str:
    return f"{new / old:5.2f}" if old and not math.isnan(old) else "  n/a"


def short(checkout: Path) -> str:
    return checkout.name[:14]


def describe(checkout: Path) -> str:
    """The commit of a checkout, and whether its working tree differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True,
                              text=True, timeout=30, check=False).stdout.strip()
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"{checkout} at {git('rev-parse', '--short', 'HEAD') or '?'}" + (
        f" + {len(dirty.splitlines())} changed file(s)" if dirty else "")


def latency_row(name: str, result: Latency) -> list[float]:
    return [*ms(result.accept, 50, 90, 100), *ms(result.done, 50, 90, 100),
            max(result.throughput, default=math.nan), max(result.submit_rate, default=math.nan)]


def print_latency(checkouts: Sequence[Path], results: Sequence[Latency], jobs: int,
                  rounds: int) -> None:
    print(f"\n1 MiB Print-Job, raw file printer: {jobs} jobs one at a time per checkout, "
          f"interleaved; then {jobs} back to back, best of {rounds} round(s)")
    print(f"{'checkout':14} | {'accept ms (response)':^20} | {'completed ms (state 9)':^22} |"
          f" {'back to back':^15}")
    print(f"{'':14} | {'p50':>6} {'p90':>6} {'max':>6} | {'p50':>7} {'p90':>6} {'max':>7} |"
          f" {'jobs/s':>7} {'sub/s':>7}")
    rows = [latency_row(short(c), r) for c, r in zip(checkouts, results, strict=True)]
    for checkout, row in zip(checkouts, rows, strict=True):
        print(f"{short(checkout):14} | {row[0]:6.1f} {row[1]:6.1f} {row[2]:6.1f} |"
              f" {row[3]:7.1f} {row[4]:6.1f} {row[5]:7.1f} | {row[6]:7.1f} {row[7]:7.1f}")
    if len(rows) > 1:
        old, new = rows[0], rows[-1]
        cells = [ratio(n, o) for n, o in zip(new, old, strict=True)]
        print(f"{'new/old':14} | {cells[0]:>6} {cells[1]:>6} {cells[2]:>6} |"
              f" {cells[3]:>7} {cells[4]:>6} {cells[5]:>7} | {cells[6]:>7} {cells[7]:>7}")


def fsync_cells(result: Persistence, on_trio: bool) -> str:
    mine = [(seconds, kind) for trio_thread, seconds, kind in result.fsyncs
            if trio_thread == on_trio]
    per_job = 1000 * sum(seconds for seconds, _ in mine) / result.jobs
    kinds = sorted({kind for _, kind in mine})
    detail = ", ".join(f"{kind} {sum(1 for _, k in mine if k == kind) / result.jobs:.1f}"
                       for kind in kinds) or "none"
    return f"{len(mine) / result.jobs:5.1f} {per_job:7.2f}  ({detail})"


def persist_cells(result: Persistence) -> str:
    if result.store is None:  # the old code: each change is written on the spot
        samples, batches, records = result.saves, len(result.saves), len(result.saves)
        how = "Spool.save, on the spot"
    else:
        samples, batches, records = (result.store.samples, result.store.batches,
                                     result.store.records)
        how = "JobStore batches"
    p50, p99, top = ms(samples, 50, 99, 100)
    per_batch = records / batches if batches else math.nan
    return (f"{p50:6.2f} {p99:6.2f} {top:6.2f} | {batches:5d} {records:5d} {per_batch:5.2f}"
            f"  {how}")


def print_persistence(checkouts: Sequence[Path], results: Sequence[Persistence], clients: int,
                      size: int) -> None:
    print(f"\nState change to persistence, in-process: {results[0].jobs} jobs of "
          f"{size // 1024} KiB from {clients} concurrent client(s), to completed")
    print("fsync per job: count and ms, on the Trio thread and in worker threads (by what "
          "they make durable); change -> on disk: ms from a job's change to the end of the "
          "write of its record")
    for checkout, result in zip(checkouts, results, strict=True):
        lag_p99, lag_max = ms(result.lags, 99, 100)
        answer_p50, answer_p90 = ms(result.answers, 50, 90)
        print(f"{short(checkout):14} {result.elapsed:6.2f} s, Print-Job answered in p50"
              f" {answer_p50:.1f} ms p90 {answer_p90:.1f} ms, loop lag p99 {lag_p99:.1f} ms,"
              f" max {lag_max:.1f} ms")
        print(f"  fsync on the Trio thread   n/job ms/job: {fsync_cells(result, True)}")
        print(f"  fsync in other threads     n/job ms/job: {fsync_cells(result, False)}")
        print(f"  change -> on disk ms  p50    p99    max | batch recs rec/b: "
              f"{persist_cells(result)}")


# --- main --------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--checkout", type=Path, action="append",
                        help="a checkout to measure (repeat; the first is 'old', the last "
                        "'new'); default: this repository")
    parser.add_argument("--jobs", type=int, default=30, help="1 MiB jobs per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="jobs not counted, per gateway")
    parser.add_argument("--rounds", type=int, default=4,
                        help="back-to-back rounds, in ABBA order")
    parser.add_argument("--persist-jobs", type=int, default=50)
    parser.add_argument("--persist-clients", type=int, default=4)
    parser.add_argument("--persist-size", type=int, default=64 * 1024, help="bytes per job")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter for the gateways (default: this one)")
    parser.add_argument("--tmp", type=Path, default=None, help="where temporary files go")
    parser.add_argument("--skip", choices=("latency", "persistence"), action="append",
                        default=[])
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    checkouts = [path.resolve() for path in args.checkout or [REPO]]
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
          f" ({os.cpu_count()} cores)")
    for checkout in checkouts:
        print(f"  {short(checkout)}: {describe(checkout)}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-job-", dir=args.tmp))
    try:
        if "latency" not in args.skip:
            with gateways(checkouts, tmp, args.python) as running:
                latency = measure_latency(running, args.jobs, args.warmup, args.rounds)
            print_latency(checkouts, latency, args.jobs, args.rounds)
        if "persistence" not in args.skip:
            persistence = [measure_persistence(checkout, tmp / f"persist-{index}", args.python,
                                               args.persist_jobs, args.persist_clients,
                                               args.persist_size)
                           for index, checkout in enumerate(checkouts)]
            print_persistence(checkouts, persistence, args.persist_clients, args.persist_size)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()
    print(f"\nload average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
