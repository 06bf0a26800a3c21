"""Logging set-up: one line per event, to standard error or to a file that rotates."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FILE_BYTES = 10 << 20  # a log file rotates at this size...
LOG_FILE_BACKUPS = 5  # ...keeping this many old ones: at most 60 MB of log, whatever happens


def configure(level: str, log_file: Path | None = None) -> None:
    """Send every logger's lines to standard error, or to `log_file` (created with its
    directory; rotated), at `level` and above. Called again (a reload), it replaces the
    handlers it set before."""
    handler: logging.Handler
    if log_file is None:
        handler = logging.StreamHandler()
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
