"""The audit log: its lines, its file (mode, rotation, a failing disk), the bus feeding it with
job events (never progress; a log that falls behind says how much it missed), and the admin
actions the IPP dispatcher hands it, against a real System."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest
import trio
import trio.testing

from gateway import audit
from gateway.audit import AuditLog, RotatingFile
from gateway.config import Config, PrinterConfig
from gateway.core.bus import EventBus
from gateway.core.events import (
    JobCreated,
    JobProgress,
    JobSnapshot,
    PrinterConfigChanged,
    PrinterSnapshot,
)
from gateway.core.system import PRINT_PATH, System
from gateway.server.operation_table import dispatch
from gateway.server.operations import Endpoint
from ippwire.enums import JobState, Operation, PrinterState, Status, ValueTag
from ippwire.model import Message
from ippwire.reader import decode_message
from ippwire.writer import encode_message, request

PRINTER = "office"
URI = f"ipp://localhost:8631{PRINT_PATH}/{PRINTER}"
COMMON_KEYS = ["time", "kind", "user", "address", "printer", "job", "operation", "outcome"]


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(text) for text in path.read_text("ascii").splitlines()]


def _snapshot(job_id: int, state: JobState = JobState.PENDING) -> JobSnapshot:
    return JobSnapshot(id=job_id, printer=PRINTER, name="n", user="alice", state=state,
                       reasons=("none",), message="", document_format="application/pdf",
                       impressions_completed=0, sheets_completed=0, bytes_sent=0, attempts=0)


# -- lines and the file -----------------------------------------------------------------------

def test_an_operation_line_has_every_key_and_the_file_is_0640(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "state" / "audit.log", clock=lambda: 1796309566.1234)
    log.operation("Pause-Printer", "bob", "192.0.2.7", PRINTER, None,
                  Status.CLIENT_ERROR_NOT_AUTHORIZED, "not yours")
    log.operation("Cancel-Job", "bob", "192.0.2.7", PRINTER, 12, Status.OK)
    log.close()
    first, second = _lines(log.path)
    assert list(first)[:8] == COMMON_KEYS
    assert first == {"time": "2026-12-03T14:52:46.123Z", "kind": "operation", "user": "bob",
                     "address": "192.0.2.7", "printer": PRINTER, "job": None,
                     "operation": "Pause-Printer", "outcome": "client-error-not-authorized",
                     "message": "not yours"}
    assert (second["job"], second["outcome"]) == (12, "successful-ok")
    assert log.path.read_text("ascii").count("\n") == 2  # one line each, compact
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o640


def test_a_failed_authentication_is_recorded(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.log") as log:
        log.auth_failed("mallory\x1b[2J", "198.51.100.9", "bad-password")
        log.auth_failed(None, "198.51.100.9", "no-credentials")
    named, anonymous = _lines(tmp_path / "audit.log")
    assert (named["kind"], named["operation"], named["outcome"], named["reason"]) == (
        "auth", "authenticate", "failed", "bad-password")
    assert named["user"] == "mallory\x1b[2J" and named["address"] == "198.51.100.9"
    assert "\x1b" not in (tmp_path / "audit.log").read_text("ascii")  # escaped in the file
    assert anonymous["user"] is None


def test_the_module_functions_write_to_the_installed_log_only(tmp_path: Path) -> None:
    audit.auth_failed("nobody", "192.0.2.1", "bad-password")  # nothing installed: no-op
    log = AuditLog(tmp_path / "audit.log").install()
    assert audit.installed() is log
    audit.auth_failed("eve", "192.0.2.1", "unknown-user")
    log.close()
    assert audit.installed() is None
    audit.auth_failed("later", "192.0.2.1", "bad-password")
    assert [line["user"] for line in _lines(tmp_path / "audit.log")] == ["eve"]


def test_the_file_rotates_by_size_keeping_the_newest(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    rotating = RotatingFile(path, max_bytes=100, backups=3)
    for number in range(20):
        rotating.write(f"{number:02d}" + "x" * 37 + "\n")  # 40 bytes: two lines a file
    rotating.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit.log", "audit.log.1", "audit.log.2", "audit.log.3"]
    kept = [path.with_name(f"audit.log.{n}") for n in (3, 2, 1)] + [path]
    numbers = [int(text[:2]) for p in kept for text in p.read_text().splitlines()]
    assert numbers == list(range(12, 20))  # in order, the oldest ones dropped
    assert all(p.stat().st_size <= 100 for p in kept)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o640 for p in kept)


def test_a_failing_file_never_raises_and_is_reported_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    log = AuditLog(blocker / "audit.log")
    with caplog.at_level(logging.WARNING, logger="gateway.audit"):
        log.auth_failed("a", "192.0.2.1", "bad-password")
        log.auth_failed("b", "192.0.2.1", "bad-password")
        assert (log.lost, log.written) == (2, 0)
        blocker.unlink()
        blocker.mkdir()
        log.auth_failed("c", "192.0.2.1", "bad-password")
    log.close()
    assert (log.lost, log.written) == (2, 1)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "cannot write" in messages[0] and "2 line(s) were lost" in messages[1]
    assert [line["user"] for line in _lines(log.path)] == ["c"]


# -- the bus ----------------------------------------------------------------------------------

async def test_a_log_that_falls_behind_says_how_many_events_it_missed(tmp_path: Path) -> None:
    bus = EventBus()
    log = AuditLog(tmp_path / "audit.log", queue=2)
    async with trio.open_nursery() as nursery:
        with log.following(bus, nursery):
            for job_id in range(1, 6):  # published without a checkpoint: it cannot keep up
                bus.publish(JobCreated(job_id, 0.0, _snapshot(job_id)))
                bus.publish(JobProgress(job_id, 0.0, _snapshot(job_id, JobState.PROCESSING)))
    log.close()
    lines = _lines(log.path)
    assert [(line["kind"], line.get("missed"), line["job"]) for line in lines] == [
        ("audit", 3, None), ("job", None, 4), ("job", None, 5)]
    assert lines[0]["operation"] == "events-missed"
    assert log.missed == 3
    assert bus.subscriber_count == 0  # the subscription ended with the block


async def test_job_events_are_written_as_they_come(tmp_path: Path) -> None:
    bus = EventBus()
    log = AuditLog(tmp_path / "audit.log")
    async with trio.open_nursery() as nursery:
        with log.following(bus, nursery):
            bus.publish(JobCreated(1, 1796309566.0, _snapshot(7, JobState.PENDING_HELD)))
            for _ in range(100):
                bus.publish(JobProgress(2, 0.0, _snapshot(7, JobState.PROCESSING)))
            await trio.testing.wait_all_tasks_blocked()
            assert len(_lines(log.path)) == 1  # written by the log's task, not at exit
        assert bus.subscriber_count == 0
    log.close()
    (created,) = _lines(log.path)
    assert created == {"time": "2026-12-03T14:52:46.000Z", "kind": "job", "user": "alice",
                       "address": None, "printer": PRINTER, "job": 7,
                       "operation": "job-created", "outcome": "pending-held",
                       "reasons": ["none"]}


async def test_a_printer_configuration_change_is_written(tmp_path: Path) -> None:
    bus = EventBus()
    log = AuditLog(tmp_path / "audit.log")
    snapshot = PrinterSnapshot(name=PRINTER, uuid="urn:uuid:1", state=PrinterState.IDLE,
                               reasons=("none",), message="", state_changed_at=0.0,
                               config_changed_at=0.0, paused=False, queued_jobs=0)
    async with trio.open_nursery() as nursery:
        with log.following(bus, nursery):
            bus.publish(PrinterConfigChanged(1, 0.0, snapshot, removed=True))
    (removed,) = _lines(log.path)
    assert (removed["kind"], removed["printer"], removed["operation"], removed["outcome"]) == (
        "printer", PRINTER, "printer-config-changed", "removed")


# -- against a real System ----------------------------------------------------------------------

def _system_config(tmp_path: Path) -> Config:
    return Config(spool=tmp_path / "spool", printers=(
        PrinterConfig(PRINTER, f"file://{tmp_path}/out/", driver="raw",
                      formats=("application/octet-stream",)),))


async def _ipp(system: System, log: AuditLog, client: str, message: Message,
               document: bytes = b"") -> Message:
    """A request through the real dispatcher, then the audit call the dispatcher makes."""
    async def chunks() -> AsyncGenerator[bytes, None]:
        if document:
            yield document

    decoded, _ = decode_message(encode_message(message))
    before = _operation_lines(log.path)
    reply, _ = decode_message(await dispatch(system, Endpoint("localhost", 8631, client=client),
                                             decoded, chunks))
    if _operation_lines(log.path) == before:  # until the dispatcher makes this call itself
        audit.ipp_request(system, decoded, client, reply.code)
    return reply


def _operation_lines(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in _lines(path) if line["kind"] == "operation")


async def test_a_running_system_is_audited(tmp_path: Path) -> None:
    config = _system_config(tmp_path)
    system = await System.open(config)
    log = AuditLog.for_config(config)
    assert log.path == tmp_path / "spool" / "audit.log"
    async with trio.open_nursery() as nursery:
        with log.following(system.bus, nursery):
            assert audit.installed() is log
            await nursery.start(system.run)
            with system.bus.subscribe(kinds=["job-completed"]) as completions:
                printed = await _ipp(system, log, "192.0.2.5:40000", request(
                    Operation.PRINT_JOB, printer_uri=URI, user="carol", attrs={
                        "document-format": (ValueTag.MIME_MEDIA_TYPE,
                                                    "application/octet-stream")}),
                    b"data" * 1000)
                assert printed.code == Status.OK
                with trio.fail_after(10):
                    await completions.receive()
            await _ipp(system, log, "[2001:db8::1]:5555",
                       request(Operation.PAUSE_PRINTER, printer_uri=URI, user="carol"))
            await _ipp(system, log, "192.0.2.5:40001",
                       request(Operation.GET_PRINTER_ATTRIBUTES, printer_uri=URI))
            await _ipp(system, log, "192.0.2.6:40002", request(
                Operation.CANCEL_JOB, printer_uri=URI, user=None,
                attrs={"job-id": (ValueTag.INTEGER, 999)}))
            await _ipp(system, log, "192.0.2.6:40003", request(
                Operation.HOLD_JOB, user=None, attrs={"job-uri": (ValueTag.URI, f"{URI}/41")}))
        assert audit.installed() is None
        nursery.cancel_scope.cancel()
    lines = _lines(log.path)
    jobs = [line for line in lines if line["kind"] == "job"]
    assert [(line["operation"], line["outcome"]) for line in jobs][-1] == (
        "job-completed", "completed")
    assert jobs[0]["operation"] == "job-created"
    assert {line["user"] for line in jobs} == {"carol"}
    assert {line["address"] for line in jobs} == {"192.0.2.5"}  # the client that printed
    assert jobs[-1]["bytes"] == 4000
    assert not any(line["operation"] == "job-progress" for line in lines)
    operations = [(line["operation"], line["user"], line["address"], line["printer"],
                   line["job"], line["outcome"])
                  for line in lines if line["kind"] == "operation"]
    # Print-Job and Get-Printer-Attributes are no admin actions; a pause from another host
    # with authentication off is refused (gateway.policy), and that is audited too.
    assert operations == [
        ("Pause-Printer", "carol", "2001:db8::1", PRINTER, None, "client-error-not-authorized"),
        ("Cancel-Job", None, "192.0.2.6", PRINTER, 999, "client-error-not-found"),
        ("Hold-Job", None, "192.0.2.6", PRINTER, 41, "client-error-not-found"),
    ]
