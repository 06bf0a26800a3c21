"""Spool limits: unfinished jobs in total and per user, the free-disk floor, and a full disk
while a document or a record is being written."""

from __future__ import annotations

import errno
import os
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest

from drivers.languages.raw import RAW_PASSTHROUGH_FORMATS
from gateway.config import Config, LimitsConfig, PrinterConfig
from gateway.core.job import Job
from gateway.core.spool import Spool, SpoolBatch
from gateway.core.store import JobLimits, job_limit_refusal, unfinished_counts
from gateway.core.system import System
from gateway.server.document import receive_document
from ippwire.enums import JobState, Operation, Status, ValueTag
from ippwire.model import Message
from ippwire.writer import request
from tests.support.ipp_dispatch import call, job_attr, op_attr

T = ValueTag
URI = "ipp://localhost:8631/ipp/print"


def _job(job_id: int, user: str, state: JobState) -> Job:
    job = Job(id=job_id, printer="office", uuid=f"urn:uuid:{job_id}", name="j", user=user,
              template={}, document_format="application/pdf")
    job.state = state
    return job


def test_unfinished_counts_leave_out_finished_jobs() -> None:
    jobs = [_job(1, "ann", JobState.PENDING), _job(2, "ann", JobState.PENDING_HELD),
            _job(3, "ann", JobState.PROCESSING), _job(4, "ann", JobState.PROCESSING_STOPPED),
            _job(5, "ann", JobState.COMPLETED), _job(6, "ann", JobState.CANCELED),
            _job(7, "ann", JobState.ABORTED), _job(8, "bob", JobState.PENDING)]
    assert unfinished_counts(jobs, "ann") == (5, 4)
    assert unfinished_counts(jobs, "bob") == (5, 1)
    assert unfinished_counts(jobs, "eve") == (5, 0)


def test_refusal_names_the_limit_reached() -> None:
    jobs = [_job(i, "ann", JobState.PENDING_HELD) for i in range(3)] + [
        _job(10, "bob", JobState.PENDING), _job(11, "bob", JobState.COMPLETED)]
    per_user = job_limit_refusal(jobs, "ann", JobLimits(total=10, per_user=3))
    assert per_user is not None and "limits.max_jobs_per_user" in per_user
    assert "'ann'" in per_user
    assert job_limit_refusal(jobs, "bob", JobLimits(total=10, per_user=3)) is None
    assert job_limit_refusal(jobs, "ann", JobLimits(total=10, per_user=4)) is None
    total = job_limit_refusal(jobs, "bob", JobLimits(total=4, per_user=4))
    assert total is not None and "limits.max_jobs" in total
    assert "max_jobs_per_user" not in total


def _system(tmp_path: Path, **limits: Any) -> System:
    config = Config(spool=tmp_path / "spool",
                    printers=(PrinterConfig("office", f"file://{tmp_path / 'out'}/",
                                            formats=RAW_PASSTHROUGH_FORMATS),),
                    limits=LimitsConfig(**limits))
    return System(config)


async def _print(system: System, user: str, data: bytes = b"%PDF-1.4 test", *,
                 hold: bool = True) -> Message:
    held: dict[str, Any] = {"job-hold-until": (T.KEYWORD, "indefinite")} if hold else {}
    return await call(system, request(
        Operation.PRINT_JOB, printer_uri=URI, user=user,
        attrs={"document-format": (T.MIME_MEDIA_TYPE, "application/pdf")}, job_attrs=held),
        data)


async def _create(system: System, user: str) -> Message:
    return await call(system, request(Operation.CREATE_JOB, printer_uri=URI, user=user))


def _message(response: Message) -> str:
    attr = op_attr(response, "status-message")
    assert attr is not None
    return str(attr.value)


def _documents(system: System) -> list[Path]:
    return sorted(system.spool.jobs_dir.glob("*.doc"))


async def test_per_user_limit_refuses_the_owner_only(tmp_path: Path) -> None:
    system = _system(tmp_path, max_jobs=10, max_jobs_per_user=3, min_free_disk_mb=0)
    for _ in range(2):
        assert (await _print(system, "ann")).code == Status.OK
    assert (await _create(system, "ann")).code == Status.OK  # an open job counts as well
    before = set(system.jobs)
    refused = await _print(system, "ann")
    assert refused.code == Status.SERVER_ERROR_TOO_MANY_JOBS
    assert "limits.max_jobs_per_user" in _message(refused)
    assert (await _create(system, "ann")).code == Status.SERVER_ERROR_TOO_MANY_JOBS
    assert set(system.jobs) == before and len(_documents(system)) == 2
    accepted = await _print(system, "bob")
    assert accepted.code == Status.OK
    # Once one of ann's jobs is finished, she may print again.
    system.cancel_job(system.jobs[min(before)])
    assert (await _print(system, "ann")).code == Status.OK


async def test_total_limit_refuses_everyone(tmp_path: Path) -> None:
    system = _system(tmp_path, max_jobs=3, max_jobs_per_user=2, min_free_disk_mb=0)
    for user in ("ann", "ann", "bob"):
        assert (await _print(system, user)).code == Status.OK
    refused = await _print(system, "eve")
    assert refused.code == Status.SERVER_ERROR_TOO_MANY_JOBS
    assert "limits.max_jobs" in _message(refused)
    assert "per user" not in _message(refused)
    assert len(system.jobs) == 3


async def test_disk_floor_refuses_new_jobs_as_busy(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    system = _system(tmp_path, min_free_disk_mb=100)
    free = {"bytes": 500 << 20}
    monkeypatch.setattr(Spool, "free_bytes", lambda self: free["bytes"])
    assert (await _print(system, "ann")).code == Status.OK
    free["bytes"] = (100 << 20) - 1
    for response in (await _print(system, "ann"), await _create(system, "bob")):
        assert response.code == Status.SERVER_ERROR_BUSY
        assert "limits.min_free_disk_mb" in _message(response)
    assert len(system.jobs) == 1 and len(_documents(system)) == 1
    free["bytes"] = 100 << 20
    assert (await _print(system, "ann")).code == Status.OK


async def test_floor_zero_never_looks_at_the_disk(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    system = _system(tmp_path, min_free_disk_mb=0)

    def unreachable(self: Spool) -> int:
        raise AssertionError("statvfs with the floor off")

    monkeypatch.setattr(Spool, "free_bytes", unreachable)
    assert (await _print(system, "ann")).code == Status.OK


def test_free_bytes_is_the_filesystems(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    stats = os.statvfs(tmp_path)
    assert spool.free_bytes() // stats.f_frsize == pytest.approx(stats.f_bavail, abs=4096)


class _FillingFile:
    """A document file on a disk that fills after `room` bytes, as a real one raises:
    ENOSPC from write once past it, and again from close (the buffer still holds bytes)."""

    def __init__(self, path: Path, room: int) -> None:
        self.file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.room = room
        self.unflushed = False

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            self.unflushed = True
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()

    def fileno(self) -> int:
        return self.file.fileno()

    def close(self) -> None:
        self.file.close()
        if self.unflushed:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


async def test_document_filling_the_disk_is_refused_and_removed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = _system(tmp_path, min_free_disk_mb=0)
    first = await _print(system, "ann")
    assert first.code == Status.OK
    kept = job_attr(first, "job-id")
    monkeypatch.setattr(Spool, "open_document",
                        lambda self, job_id: _FillingFile(self.document_path(job_id), 5000))
    refused = await _print(system, "ann", b"%PDF-1.4 " + b"x" * 20_000)
    assert refused.code == Status.SERVER_ERROR_TEMPORARY_ERROR
    assert "No space left" in _message(refused)
    # No half-written document, no job left of the refused request; the first job is intact.
    assert [p.name for p in _documents(system)] == [f"{kept:05d}.doc"]
    assert list(system.jobs) == [kept]
    await system.store.flushed()
    assert sorted(p.name for p in system.spool.jobs_dir.iterdir()) == [
        f"{kept:05d}.doc", f"{kept:05d}.json"]


async def test_receive_removes_the_partial_document_itself(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not left for the store's writer: on a full disk that writer may not get as far."""
    system = _system(tmp_path, min_free_disk_mb=0)
    job = system.create_job(system.default_printer, name="j", user="ann", template={},
                            document_format="application/pdf")
    monkeypatch.setattr(Spool, "open_document",
                        lambda self, job_id: _FillingFile(self.document_path(job_id), 10))

    async def document() -> AsyncGenerator[bytes, None]:
        yield b"0123456789abcdef"

    with pytest.raises(OSError) as caught:
        await receive_document(system, job, document)
    assert caught.value.errno == errno.ENOSPC
    assert not system.spool.document_path(job.id).exists()
    assert not job.has_document


async def test_send_document_filling_the_disk_aborts_its_job(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = _system(tmp_path, min_free_disk_mb=0)
    created = await _create(system, "ann")
    job_id = job_attr(created, "job-id")
    assert isinstance(job_id, int)
    monkeypatch.setattr(Spool, "open_document",
                        lambda self, job_id: _FillingFile(self.document_path(job_id), 100))
    response = await call(system, request(
        Operation.SEND_DOCUMENT, printer_uri=URI, user="ann",
        attrs={"job-id": (T.INTEGER, job_id), "last-document": (T.BOOLEAN, True),
               "document-format": (T.MIME_MEDIA_TYPE, "application/pdf")}), b"x" * 1000)
    assert response.code == Status.SERVER_ERROR_TEMPORARY_ERROR
    job = system.jobs[job_id]  # the client holds its id: it ends, it does not vanish
    assert job.state is JobState.ABORTED and not job.has_document
    assert _documents(system) == []


def test_failed_record_write_leaves_no_temporary_file(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path / "spool")
    spool.document_path(7).write_bytes(b"old document")
    spool.record_path(7).write_bytes(b"{}")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as caught:
        spool.write_batch(SpoolBatch(records=[(8, b"{}")], deleted={7: True}))
    assert caught.value.errno == errno.ENOSPC
    # The discarded job went first, freeing its space; the record that failed left nothing.
    assert list(spool.jobs_dir.iterdir()) == []


def test_finished_job_keeps_its_document_until_its_record_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path / "spool")
    spool.document_path(7).write_bytes(b"document")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        spool.write_batch(SpoolBatch(records=[(7, b"{}")], deleted={7: False}))
    assert spool.document_path(7).read_bytes() == b"document"
