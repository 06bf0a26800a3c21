"""Orphaned jobs: spooled jobs whose printer is not configured (renamed, removed, or a run
with `--printer`). The gateway keeps them untouched; the command line lists them and deletes
them on request, reading the spool files directly since no gateway serves them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.core.job import Job

log = logging.getLogger("gateway.ctl")


class SpoolUnreadable(Exception):
    """The spool's job records cannot be listed (permissions): exit 1."""


@dataclass(frozen=True)
class Orphan:
    """A spooled job whose printer is not configured, and the record it was read from."""

    job: Job
    record: Path

    @property
    def printer(self) -> str:
        return str(self.job.printer)

    @property
    def label(self) -> str:
        return f"{safe(self.printer)}-{self.job.id}"

    @property
    def document(self) -> Path:
        return self.record.with_suffix(".doc")

    @property
    def files(self) -> tuple[Path, Path]:
        return self.record, self.document


def spool_records(spool: Path) -> list[tuple[Path, Job]]:
    """Every readable job record under `spool/jobs`, read only (nothing is created)."""
    jobs_dir = spool / "jobs"
    try:
        names = sorted(os.listdir(jobs_dir))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise SpoolUnreadable(f"cannot list the jobs of spool {spool}: {exc.strerror}") from None
    records = []
    for name in names:
        if not name.endswith(".json"):
            continue
        path = jobs_dir / name
        try:
            records.append((path, Job.from_record(json.loads(path.read_bytes()))))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("skipping unreadable job record %s (%s)", path, exc)
    return records


def find_orphans(spool: Path, configured: frozenset[str],
                 served: Callable[[str], bool] | None = None) -> list[Orphan]:
    """Jobs of printers not in `configured`; `served(name)` true (the running gateway answers
    for that printer) keeps a printer's jobs out of the list whatever `configured` says."""
    records = spool_records(spool)
    candidates = sorted({str(job.printer) for _, job in records} - configured)
    orphaned = {name for name in candidates if served is None or not served(name)}
    return [Orphan(job, path) for path, job in records if str(job.printer) in orphaned]


def purge(orphans: Iterable[Orphan]) -> Iterator[tuple[Orphan, list[Path], str]]:
    """Delete each orphan's record, then its document; yields (orphan, the files deleted,
    "" or the problem). The record goes first: without it the job is gone, while a stray
    document is only bytes."""
    for orphan in orphans:
        deleted: list[Path] = []
        try:
            for path in orphan.files:
                if path.exists():
                    path.unlink(missing_ok=True)
                    deleted.append(path)
        except OSError as exc:
            yield orphan, deleted, exc.strerror or str(exc)
        else:
            yield orphan, deleted, ""


def safe(text: str) -> str:
    """Names and messages come from the network: no control character reaches the terminal."""
    return "".join(c if c.isprintable() else "?" for c in text)
