"""Helpers that run the real peers (ipptool, cupsd, ippeveprinter, our gateway) for tests.

Every helper starts its processes on 127.0.0.1 with private directories and stops them by PID.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS_DIR = (REPO_ROOT / ".." / "shared" / "corpus").resolve()
