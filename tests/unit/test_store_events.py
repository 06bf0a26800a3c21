"""The job store and the event bus: bounded subscriber queues, coalesced progress, writes that
reach the disk off the Trio thread, and durability where it is promised."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest
import trio
import trio.testing

from gateway.config import Config, PrinterConfig
from gateway.core.bus import EventBus
from gateway.core.events import (
    JobCompleted,
    JobCreated,
    JobProgress,
    JobSnapshot,
    JobStateChanged,
    PrinterStateChanged,
)
from gateway.core.job import JobEvent
from gateway.core.system import PRINT_PATH, System
from gateway.server.operation_table import dispatch
from gateway.server.operations import Endpoint
from ippwire.enums import JobState, Operation, ValueTag
from ippwire.model import Message
from ippwire.reader import decode_message
from ippwire.writer import encode_message, request

PRINTER = "office"
URI = f"ipp://localhost:8631{PRINT_PATH}/{PRINTER}"


def _snapshot(job_id: int, state: JobState = JobState.PROCESSING, pages: int = 0) -> JobSnapshot:
    return JobSnapshot(id=job_id, printer=PRINTER, name="n", user="u", state=state,
                       reasons=(), message="", document_format="application/pdf",
                       impressions_completed=pages, sheets_completed=pages, bytes_sent=0,
                       attempts=1)


def _system(tmp_path: Path) -> System:
    return System(Config(spool=tmp_path / "spool", printers=(
        PrinterConfig(PRINTER, f"file://{tmp_path}/out/", driver="raw",
                      formats=("application/octet-stream",)),)))


async def _ipp(system: System, message: Message, document: bytes = b"") -> Message:
    async def chunks() -> AsyncGenerator[bytes, None]:
        if document:
            yield document

    decoded, _ = decode_message(encode_message(message))
    local = Endpoint("localhost", 8631, client="127.0.0.1:1")  # an administrator
    reply, _ = decode_message(await dispatch(system, local, decoded, chunks))
    assert reply.code < 0x400, reply
    return reply


def _job_id(reply: Message) -> int:
    attr = reply.groups[1].get("job-id")
    assert attr is not None and isinstance(attr.value, int)
    return attr.value


# -- the bus ----------------------------------------------------------------------------------

async def test_a_full_queue_drops_the_oldest_and_counts_it() -> None:
    bus = EventBus()
    with bus.subscribe(maxlen=3) as slow, bus.subscribe() as fast:
        for job_id in range(1, 6):
            bus.publish(JobCreated(job_id, 0.0, _snapshot(job_id, JobState.PENDING_HELD)))
        assert [e.job.id for e in slow.drain()] == [3, 4, 5]  # type: ignore[union-attr]
        assert slow.missed == 2
        assert fast.pending() == 5 and fast.missed == 0  # one slow reader slows no other


async def test_progress_is_coalesced_but_never_reordered() -> None:
    bus = EventBus()
    with bus.subscribe(maxlen=8) as events:
        bus.publish(JobProgress(1, 0.0, _snapshot(1, pages=1)))
        bus.publish(JobProgress(2, 0.0, _snapshot(2, pages=1)))
        bus.publish(JobProgress(3, 0.0, _snapshot(1, pages=2)))  # replaces job 1's first
        bus.publish(JobStateChanged(4, 0.0, _snapshot(1, JobState.PROCESSING_STOPPED),
                                    JobState.PROCESSING))
        bus.publish(JobProgress(5, 0.0, _snapshot(1, pages=3)))  # after a state change: kept
        got = [(e.revision, e.kind) for e in events.drain()]
    assert got == [(3, "job-progress"), (2, "job-progress"), (4, "job-state-changed"),
                   (5, "job-progress")]


async def test_kinds_filter_and_closing_ends_iteration() -> None:
    bus = EventBus()
    subscription = bus.subscribe(kinds=["job-completed"])
    bus.publish(JobCreated(1, 0.0, _snapshot(1)))
    bus.publish(JobCompleted(2, 0.0, _snapshot(1, JobState.COMPLETED), JobState.PROCESSING))
    received = []
    async with trio.open_nursery() as nursery:
        async def read() -> None:
            async for event in subscription:
                received.append(event.revision)

        nursery.start_soon(read)
        await trio.testing.wait_all_tasks_blocked()
        subscription.close()
    assert received == [2]
    assert bus.subscriber_count == 0


# -- the store --------------------------------------------------------------------------------

async def test_a_change_reaches_the_disk_in_the_next_round(tmp_path: Path) -> None:
    system = _system(tmp_path)
    job = system.create_job(system.printers[PRINTER], name="n", user="u", template={},
                            document_format="application/octet-stream")
    await system.store.flushed()
    record = system.spool.record_path(job.id)
    assert json.loads(record.read_bytes())["state"] == JobState.PENDING_HELD  # created: on disk
    async with trio.open_nursery() as nursery:
        await nursery.start(system.store.run)
        system.store.transition(job, JobEvent.HOLD, "job-hold-until-specified")
        system.store.transition(job, JobEvent.RELEASE, "job-queued")
        assert system.store.unwritten == 2  # nothing written on the Trio thread meanwhile
        await system.store.flushed()
        assert system.store.unwritten == 0
        nursery.cancel_scope.cancel()
    assert json.loads(record.read_bytes())["state"] == JobState.PENDING
    assert system.store.persist_latency.batches >= 1


async def test_a_failed_write_is_kept_and_retried(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    system = _system(tmp_path)
    job = system.create_job(system.printers[PRINTER], name="n", user="u", template={},
                            document_format="application/octet-stream")
    await system.store.flushed()
    real = system.spool.write_batch
    monkeypatch.setattr(system.spool, "write_batch",
                        lambda batch: (_ for _ in ()).throw(OSError(28, "No space left")))
    system.store.transition(job, JobEvent.CANCEL, "job-canceled-by-user")
    with pytest.raises(OSError):
        await system.store.flushed()
    assert system.store.unwritten == 1
    monkeypatch.setattr(system.spool, "write_batch", real)
    await system.store.flushed()
    assert json.loads(system.spool.record_path(job.id).read_bytes())["state"] == (
        JobState.CANCELED)


async def test_no_fsync_runs_on_the_trio_thread(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    trio_thread = threading.get_ident()
    threads: list[bool] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        threads.append(threading.get_ident() == trio_thread)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    config = Config(spool=tmp_path / "spool", printers=(
        PrinterConfig(PRINTER, f"file://{tmp_path}/out/", driver="raw",
                      formats=("application/octet-stream",)),))
    system = await System.open(config)  # a new spool: system.json is written too
    async with trio.open_nursery() as nursery:
        await nursery.start(system.run)
        with system.bus.subscribe(kinds=["job-completed"]) as completions:
            printed = _job_id(await _ipp(system, request(
                Operation.PRINT_JOB, printer_uri=URI, attrs={
                    "document-format": (ValueTag.MIME_MEDIA_TYPE,
                                        "application/octet-stream")}), b"data"))
            with trio.fail_after(10):
                assert (await completions.receive()).job.id == printed  # type: ignore[union-attr]
            await _ipp(system, request(Operation.PAUSE_PRINTER, printer_uri=URI))
            created = _job_id(await _ipp(system, request(Operation.CREATE_JOB,
                                                         printer_uri=URI)))
            await _ipp(system, request(Operation.CANCEL_JOB, printer_uri=URI,
                                       attrs={"job-id": (ValueTag.INTEGER, created)}))
            await _ipp(system, request(Operation.RESUME_PRINTER, printer_uri=URI))
        nursery.cancel_scope.cancel()
    assert (tmp_path / "out" / f"job-{printed:05d}.prn").read_bytes() == b"data"
    assert len(threads) >= 10  # system.json, records, the document, the output, printers.json
    assert not any(threads), f"{threads.count(True)} of {len(threads)} fsyncs on the Trio thread"


async def test_printer_changes_are_published(tmp_path: Path) -> None:
    system = _system(tmp_path)
    printer = system.printers[PRINTER]
    with system.bus.subscribe(kinds=["printer-state-changed"]) as events:
        printer.pause()
        printer.pause()  # no change, no event
        printer.resume()
        got = events.drain()
    assert [(e.printer.state.name, e.printer.reasons) for e in got
            if isinstance(e, PrinterStateChanged)] == [
        ("STOPPED", ("paused",)), ("IDLE", ("none",))]
    assert got[0].revision < got[1].revision
