"""The transport conformance suite: one set of checks every transport must pass.

`await check_transport(make_transport, read_delivered, failures=...)` checks, against a real
(or simulated) device:

- byte-exact delivery: payloads of several sizes, holding every byte value and the bytes the
  protocols treat specially (NUL, LF, UEL, XON/XOFF, form feed), sent in uneven chunks;
- idempotent close: `abort_job`/`end_job` with no job, twice, and after a finished job, change
  nothing and never deliver anything twice; the transport carries the next job;
- cancel mid-send: cancelling a sender blocked in or between `send_all` calls stops it, and
  `abort_job` returns, within `cancel_budget` seconds; afterwards the transport is closed
  (`send_all` fails) and the cancelled job never arrives complete;
- error -> outcome: each `FailureCase` breaks the device; the job must fail with a
  `TransportError` carrying the expected outcome (and reason), never arrive complete, and after
  the device is restored the next job must arrive intact.

`read_delivered(job, complete)` returns the bytes the device received for `job` (None if none):
with `complete=True` it may wait for a job that finished; with `complete=False` (a cancelled or
failed job) it should look without waiting long. Jobs are read in the order they were sent.
Raises AssertionError naming the check on the first violation; returns the checks passed.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from drivers.errors import Outcome, TransportError
from drivers.transport import JobInfo, Transport

MakeTransport = Callable[[], Transport]
ReadDelivered = Callable[[JobInfo, bool], Awaitable[bytes | None]]
DeviceAction = Callable[[], Awaitable[None]]

SPECIAL_BYTES = (
    b"\x00\x01\x02\x03\n\x00\x1b%-12345X@PJL JOB\r\n\x0c\x11\x13\x04\r\n" + bytes(range(256))
)
_CHUNK_PATTERN = (1, 2, 3, 1000, 4096, 65536, 65536, 65535, 7)


@dataclass(frozen=True)
class FailureCase:
    """A way to break the device and the outcome a job must then fail with.

    `at_byte` is where the device breaks: 0 = before `start_job`, n > 0 = once n bytes of the
    job were handed to `send_all` (the job is `size` bytes, sent in 64 KiB chunks).
    """

    name: str
    break_device: DeviceAction
    restore_device: DeviceAction
    outcome: Outcome
    reason: str | None = None
    at_byte: int = 0
    size: int = 256 * 1024
    within: float = 10.0


def payload(size: int, seed: int) -> bytes:
    """Deterministic test bytes that start with the protocol-special sequences."""
    head = SPECIAL_BYTES[:size]
    return head + random.Random(seed).randbytes(size - len(head))


def chunks(data: bytes) -> Iterator[bytes]:
    """`data` cut at uneven places, as a filter chain would hand it over."""
    offset, index = 0, 0
    while offset < len(data):
        size = _CHUNK_PATTERN[index % len(_CHUNK_PATTERN)]
        yield data[offset : offset + size]
        offset, index = offset + size, index + 1


async def send_job(transport: Transport, job: JobInfo, data: bytes) -> None:
    await transport.start_job(job)
    for piece in chunks(data):
        await transport.send_all(piece)
    await transport.end_job()


class _Jobs:
    def __init__(self, first_id: int, known_length: bool) -> None:
        self.next_id = first_id
        self.known_length = known_length

    def make(self, size: int, name: str) -> JobInfo:
        job_id, self.next_id = self.next_id, self.next_id + 1
        return JobInfo(
            job_id=job_id, job_name=f"conformance {name} {job_id}", user="conformance",
            data_length=size if self.known_length else None,
        )


async def check_transport(
    make_transport: MakeTransport,
    read_delivered: ReadDelivered,
    *,
    failures: Sequence[FailureCase] = (),
    sizes: Sequence[int] = (1, 1000, 300_000),
    first_job_id: int = 900,
    known_length: bool = False,
    cancel_after: int = 256 * 1024,
    cancel_budget: float = 1.0,
    job_timeout: float = 20.0,
) -> list[str]:
    jobs = _Jobs(first_job_id, known_length)
    passed: list[str] = []
    with trio.fail_after(job_timeout * (len(sizes) + 3 + len(failures))):
        await _check_delivery(make_transport, read_delivered, jobs, sizes)
        passed.append("byte-exact delivery")
        await _check_file_delivery(make_transport, read_delivered, jobs, max(sizes))
        passed.append("byte-exact delivery from a file")
        await _check_idempotent_close(make_transport, read_delivered, jobs)
        passed.append("idempotent close")
        await _check_cancel(make_transport, read_delivered, jobs, cancel_after, cancel_budget)
        passed.append("cancel mid-send leaves it closed")
        for case in failures:
            await _check_failure(make_transport, read_delivered, jobs, case)
            passed.append(f"failure {case.name} -> {case.outcome.value}")
    return passed


async def _expect_delivered(read: ReadDelivered, job: JobInfo, data: bytes, check: str) -> None:
    got = await read(job, True)
    if got != data:
        size = "nothing" if got is None else f"{len(got)} bytes"
        where = _first_difference(got or b"", data)
        raise AssertionError(
            f"{check}: job {job.job_id} sent {len(data)} bytes, device got {size}"
            f" (first difference at byte {where})"
        )


def _first_difference(got: bytes, want: bytes) -> int:
    for index, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return index
    return min(len(got), len(want))


async def _check_delivery(
    make: MakeTransport, read: ReadDelivered, jobs: _Jobs, sizes: Sequence[int]
) -> None:
    shared = make()
    for index, size in enumerate(sizes):
        transport = make() if index == 0 else shared  # a fresh one, then one reused
        job = jobs.make(size, "delivery")
        data = payload(size, job.job_id)
        await send_job(transport, job, data)
        await _expect_delivered(read, job, data, "byte-exact delivery")


async def _check_file_delivery(
    make: MakeTransport, read: ReadDelivered, jobs: _Jobs, size: int
) -> None:
    """A header by send_all, then a document by send_file: as a PJL-wrapped raw job goes."""
    head = b"@PJL header\r\n"
    job = jobs.make(len(head) + size, "file")
    document = payload(size, job.job_id)
    reported: list[int] = []
    with tempfile.TemporaryDirectory(prefix="transport-check-") as directory:
        path = Path(directory) / "document"
        await trio.Path(path).write_bytes(document)
        transport = make()
        await transport.start_job(job)
        await transport.send_all(head)
        await transport.send_file(path, reported.append)
        await transport.end_job()
    if sum(reported) != size:
        raise AssertionError(f"send_file reported {sum(reported)} bytes sent of {size}")
    await _expect_delivered(read, job, head + document, "byte-exact delivery from a file")


async def _check_idempotent_close(make: MakeTransport, read: ReadDelivered, jobs: _Jobs) -> None:
    transport = make()
    await transport.abort_job()
    await transport.abort_job()
    await transport.end_job()
    job = jobs.make(5000, "close")
    data = payload(5000, job.job_id)
    await send_job(transport, job, data)
    await transport.end_job()
    await transport.abort_job()
    await transport.abort_job()
    await _expect_delivered(read, job, data, "idempotent close")
    follow = jobs.make(3000, "after-close")
    follow_data = payload(3000, follow.job_id)
    await send_job(transport, follow, follow_data)
    await _expect_delivered(read, follow, follow_data, "idempotent close (next job)")


async def _check_cancel(
    make: MakeTransport, read: ReadDelivered, jobs: _Jobs, cancel_after: int, budget: float
) -> None:
    transport = make()
    job = jobs.make(64 * 1024 * 1024, "cancel")  # announced big; cancelled long before
    handed = bytearray()  # what send_all was given: the device may hold a prefix of it
    reached = trio.Event()

    async def sender(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            await transport.start_job(job)
            while True:
                piece = payload(65536, job.job_id + len(handed))
                await transport.send_all(piece)
                handed.extend(piece)
                if len(handed) >= cancel_after:
                    reached.set()

    async with trio.open_nursery() as nursery:
        scope = await nursery.start(sender)
        with trio.fail_after(30):
            await reached.wait()
        started = trio.current_time()
        scope.cancel()
    await transport.abort_job()
    elapsed = trio.current_time() - started
    if elapsed > budget:
        raise AssertionError(f"cancel mid-send: took {elapsed:.2f} s (budget {budget} s)")
    await _expect_closed(transport, "cancel mid-send")
    got = await read(job, False)
    if got is not None and not (bytes(handed) + piece_in_flight(job, handed)).startswith(got):
        raise AssertionError("cancel mid-send: the device got bytes that were never sent")
    after = jobs.make(2000, "after-cancel")
    after_data = payload(2000, after.job_id)
    await send_job(transport, after, after_data)
    await _expect_delivered(read, after, after_data, "cancel mid-send (next job)")


def piece_in_flight(job: JobInfo, handed: bytearray) -> bytes:
    """The chunk that was being sent when the cancel came: part of it may have gone out."""
    return payload(65536, job.job_id + len(handed))


async def _expect_closed(transport: Transport, check: str) -> None:
    try:
        await transport.send_all(b"must not be sent")
    except TransportError:
        return
    raise AssertionError(f"{check}: send_all after abort_job did not fail: still open")


async def _check_failure(
    make: MakeTransport, read: ReadDelivered, jobs: _Jobs, case: FailureCase
) -> None:
    check = f"failure {case.name}"
    job = jobs.make(case.size, case.name)
    data = payload(case.size, job.job_id)
    if case.at_byte == 0:
        await case.break_device()
    transport = make()
    try:
        with trio.fail_after(case.within):
            error = await _failing_job(transport, job, data, case)
    finally:
        await transport.abort_job()
    if error.outcome is not case.outcome or (case.reason and error.reason != case.reason):
        raise AssertionError(
            f"{check}: failed with {error.outcome.value}/{error.reason!r} ({error.message}); "
            f"expected {case.outcome.value}/{case.reason!r}"
        )
    got = await read(job, False)
    if got == data:
        raise AssertionError(f"{check}: the job failed but arrived complete")
    await case.restore_device()
    after = jobs.make(3000, f"after-{case.name}")
    after_data = payload(3000, after.job_id)
    await send_job(make(), after, after_data)
    await _expect_delivered(read, after, after_data, f"{check} (recovery)")


async def _failing_job(
    transport: Transport, job: JobInfo, data: bytes, case: FailureCase
) -> TransportError:
    try:
        await transport.start_job(job)
        offset, broken = 0, case.at_byte == 0
        while offset < len(data):
            if not broken and offset >= case.at_byte:
                await case.break_device()
                broken = True
            await transport.send_all(data[offset : offset + 65536])
            offset += 65536
        await transport.end_job()
    except TransportError as error:
        return error
    raise AssertionError(f"failure {case.name}: the job succeeded on a broken device")
