"""Helpers that run the real peers for tests and benchmarks, as processes: our gateway,
ipptool, cupsd, ippeveprinter, BSD lpd and p910nd, with their process plumbing written once
(procs.py) and the skip when one cannot run here (require.py).

Every helper starts its processes on 127.0.0.1 with private directories and stops them by PID.
Peers that are not processes of their own (fault-injecting LPD and port 9100 servers, the pty
and USB printers) and every other shared helper live in tests/support/.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS_DIR = (REPO_ROOT / ".." / "shared" / "corpus").resolve()
