"""Logging set-up: one line per event, to standard error or to a file that rotates.

Under systemd (standard error is the journal's stream, as $JOURNAL_STREAM says) a line carries
no timestamp of its own, the journal adds one, but a `<N>` syslog priority prefix, so that
`journalctl -p warning` finds the warnings.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "<%(syslog_priority)d>%(levelname)s %(name)s: %(message)s"
SYSLOG_PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
                     logging.CRITICAL: 2}
LOG_FILE_BYTES = 10 << 20  # a log file rotates at this size...
LOG_FILE_BACKUPS = 5  # ...keeping this many old ones: at most 60 MB of log, whatever happens


def configure(level: str, log_file: Path | None = None) -> None:
    """Send every logger's lines to standard error, or to `log_file` (created with its
    directory; rotated), at `level` and above. Called again (a reload), it replaces the
    handlers it set before."""
    handler: logging.Handler
    if log_file is None:
        handler = logging.StreamHandler()
        handler.setFormatter(JournalFormatter() if stderr_is_journal() else
                             logging.Formatter(FORMAT))
    else:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8")
        handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))


class JournalFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        record.syslog_priority = SYSLOG_PRIORITIES.get(record.levelno, 6)
        return super().format(record)


def stderr_is_journal() -> bool:
    """True when standard error is the stream systemd connected to the journal: its
    $JOURNAL_STREAM (device:inode) names this very file, not one a child inherited it from."""
    device, _, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        status = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return (status.st_dev, status.st_ino) == (int(device), int(inode))
