"""The crash-safe spool: documents fsynced before a job is reported, records written atomically.

Layout under the spool directory:
  jobs/00042.json   the job record (write to .tmp, fsync, rename, fsync the directory)
  jobs/00042.doc    the document as received (decompressed)
  system.json       the system UUID (printer UUIDs derive from it, stable across restarts) and
                    the job-id mark: ids below it may have been handed out, so a restart never
                    hands them out again, even after every record was trimmed
  gateway.lock      held (flock) by the one gateway using this spool (core.spool_lock)
  printers.json     what an operator set on a printer that must outlive a restart (paused)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from gateway.core.job import Job

log = logging.getLogger("gateway.spool")


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    _write_synced(temporary, data)
    os.replace(temporary, path)
    fsync_directory(path.parent)


def _write_synced(path: Path, data: bytes) -> None:
    """Write and fsync `path`; on failure (a full disk, say) remove what was written, so a
    full spool is not kept full by its own half-written files."""
    try:
        with open(path, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except OSError:
        with contextlib.suppress(OSError):  # the write's error is the one to report
            path.unlink(missing_ok=True)
        raise


@dataclass
class SpoolBatch:
    """One writer round of the job store, written by `Spool.write_batch` in a thread."""

    records: list[tuple[int, bytes]] = field(default_factory=list)  # job-id, JSON record
    deleted: dict[int, bool] = field(default_factory=dict)  # job-id -> whole job or document
    job_id_mark: int | None = None
    paused: list[str] | None = None


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.jobs_dir = root / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)

    def system_uuid(self) -> uuid.UUID:
        record = self._system_record()
        try:
            return uuid.UUID(record["uuid"])
        except (ValueError, KeyError, TypeError, AttributeError):
            value = uuid.uuid4()
            self._write_system_record({**record, "uuid": str(value)})
            return value

    def job_id_mark(self) -> int:
        """The first job-id never handed out by an earlier run (1 on a new spool)."""
        mark = self._system_record().get("job_id_mark", 1)
        return mark if isinstance(mark, int) and not isinstance(mark, bool) and mark > 0 else 1

    def save_job_id_mark(self, mark: int) -> None:
        self._write_system_record({**self._system_record(), "job_id_mark": mark})

    def _system_record(self) -> dict[str, Any]:
        try:
            record = json.loads((self.root / "system.json").read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("spool: ignoring unreadable system.json (%s)", exc)
            return {}
        return record if isinstance(record, dict) else {}

    def _write_system_record(self, record: dict[str, Any]) -> None:
        write_atomically(self.root / "system.json", json.dumps(record).encode())

    def paused_printers(self) -> set[str]:
        try:
            names = json.loads((self.root / "printers.json").read_text())["paused"]
        except FileNotFoundError:
            return set()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("spool: ignoring unreadable printers.json (%s)", exc)
            return set()
        return {name for name in names if isinstance(name, str)}

    def document_path(self, job_id: int) -> Path:
        return self.jobs_dir / f"{job_id:05d}.doc"

    def record_path(self, job_id: int) -> Path:
        return self.jobs_dir / f"{job_id:05d}.json"

    def free_bytes(self) -> int:
        """Free space on the spool's filesystem, as an unprivileged writer may use it
        (blocking: a statvfs, which a network filesystem may make slow)."""
        stats = os.statvfs(self.root)
        return stats.f_bavail * stats.f_frsize

    def open_document(self, job_id: int) -> BinaryIO:
        return open(self.document_path(job_id), "wb")

    @staticmethod
    def finish_document(file: BinaryIO) -> None:
        """Make the document durable before the job is reported to the client."""
        file.flush()
        os.fsync(file.fileno())
        file.close()

    def write_batch(self, batch: SpoolBatch) -> None:
        """Write a batch (blocking: the store runs it in a thread). The job-id mark goes
        before the records, so no record on disk has an id the mark does not cover; each record is
        written to .tmp and fsynced, renamed, and one directory fsync makes every rename of
        the batch durable."""
        # Whole jobs go first: they are gone from memory (discarded, trimmed or purged) and
        # no record of this batch names them, so nothing depends on the order, and on a full
        # disk the space they free lets the records below be written. A finished job's
        # document goes only after its record says it finished: a crash between the two must
        # not leave a pending job without its document.
        for job_id, whole in batch.deleted.items():
            if whole:
                self.delete(job_id)
        if batch.job_id_mark is not None:
            self.save_job_id_mark(batch.job_id_mark)
        if batch.paused is not None:
            write_atomically(self.root / "printers.json",
                             json.dumps({"paused": batch.paused}).encode())
        for job_id, record in batch.records:
            temporary = self.record_path(job_id).with_suffix(".tmp")
            _write_synced(temporary, record)
            os.replace(temporary, self.record_path(job_id))
        if batch.records:
            fsync_directory(self.jobs_dir)
        for job_id, whole in batch.deleted.items():
            if not whole:
                self.delete_document(job_id)

    def delete(self, job_id: int) -> None:
        for path in (self.record_path(job_id), self.document_path(job_id)):
            path.unlink(missing_ok=True)

    def delete_document(self, job_id: int) -> None:
        self.document_path(job_id).unlink(missing_ok=True)

    def load_all(self) -> list[Job]:
        jobs: list[Job] = []
        for path in sorted(self.jobs_dir.glob("*.json")):
            try:
                record: dict[str, Any] = json.loads(path.read_bytes())
                jobs.append(Job.from_record(record))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.error("spool: ignoring unreadable job record %s (%s)", path, exc)
        for stale in self.jobs_dir.glob("*.tmp"):
            stale.unlink(missing_ok=True)
        for document in self.jobs_dir.glob("*.doc"):
            # A document without a record: its request never finished (the record is written
            # before a job is answered), so no client holds its job-id.
            if not document.with_suffix(".json").exists():
                log.info("spool: removing %s, left by a request that never finished",
                         document.name)
                document.unlink(missing_ok=True)
        return jobs
