"""BSD `lpd` (Debian `lpr`) on 127.0.0.1:<free port>, in a private mount namespace.

lpd reads only /etc/printcap and /etc/hosts.lpd and keeps its PID in /run/lpd.pid (one
instance per host). Instead of editing the real files, the daemon runs under `unshare --mount`
with an overlay on /etc holding our printcap and hosts.lpd, and a directory of ours bound on
/run: nothing global changes, a crashed test leaves nothing behind, and two test sessions can
each run their own lpd.

By default the printer device is a FIFO nobody reads: lpd's printer daemon blocks opening it,
so received jobs stay in the spool directory as the server wrote them (`cfA<nnn><host>`,
`dfA<nnn><host>`: what arrived at the queue), and the queue state lists them. (`lpc stop` does
not last: this lpd recreates its lock file, printing enabled, once the queue empties.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.peers.procs import (
    LOOPBACK,
    PeerError,
    alive,
    children_of,
    find_program,
    free_port,
    is_root,
    kill_pid,
    listening,
    wait_until,
)
from tests.peers.require import INSTALL_HINT

LPD = "/usr/sbin/lpd"
QUEUE = "gwtest"
_LOCK_QUEUEING_OFF = 0o010  # group-execute bit (what `lpc disable` sets)


@dataclass
class ReceivedJob:
    control: str
    data_files: list[Path]

    def control_lines(self) -> list[str]:
        return self.control.splitlines()


@dataclass
class BsdLpd:
    queue: str = QUEUE
    printing: bool = False
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ipp-gw-lpd-")))
    port: int = 0
    pid: int = 0

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def uri(self) -> str:
        return f"lpd://{LOOPBACK}:{self.port}/{self.queue}"

    def start(self) -> None:
        if not (os.path.exists(LPD) and find_program("unshare")):
            raise PeerError("needs BSD lpd (Debian package lpr) and unshare")
        self._write_files()
        self.port = free_port()
        script = (
            "set -e\n"
            f"mount -t overlay overlay -o lowerdir=/etc,upperdir={self.root}/etc,"
            f"workdir={self.root}/etc-work /etc\n"
            f"mount --bind {self.root}/run /run\n"
            + f"exec {LPD} -b {LOOPBACK} {self.port}\n"
        )
        log = self.root / "start.log"
        with open(log, "wb") as out:
            status = subprocess.run(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                stdout=out, stderr=subprocess.STDOUT, timeout=10, check=False,
            ).returncode
        if status != 0:
            raise PeerError(f"lpd did not start (status {status}): {log.read_text()}")
        pid_file = self.root / "run" / "lpd.pid"
        wait_until(pid_file.exists, 5, "lpd.pid")
        wait_until(lambda: pid_file.read_text().strip().isdigit(), 5, "lpd.pid contents")
        self.pid = int(pid_file.read_text())
        wait_until(lambda: listening(self.port), 5, f"lpd listening on {self.port}")

    def _write_files(self) -> None:
        for name in ("etc", "etc-work", "run", "spool"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # lpd works as user lp: it must reach the spool
        shutil.chown(self.spool, "lp", "lp")
        os.chmod(self.spool, 0o775)
        device = "/dev/null"
        if not self.printing:  # the printer daemon blocks opening it: jobs stay in the spool
            device = str(self.root / "device")
            os.mkfifo(device)
            shutil.chown(device, "lp", "lp")
        printcap = (
            f"{self.queue}|ipp-gateway transport tests:\\\n"
            f"\t:lp={device}:sd={self.spool}:lf={self.spool}/log:sh:sf:mx#0:\n"
        )
        (self.root / "etc" / "printcap").write_text(printcap)
        (self.root / "etc" / "hosts.lpd").write_text("localhost\n127.0.0.1\n")

    def stop(self) -> None:
        if self.pid:
            helpers = children_of(self.pid)  # the printer daemon blocked on the FIFO, if any
            kill_pid(self.pid)
            for pid in helpers:
                kill_pid(pid, grace=1.0)
            self.pid = 0
        shutil.rmtree(self.root, ignore_errors=True)

    # -- the queue -----------------------------------------------------------------------

    def _lock(self) -> Path:
        lock = self.spool / "lock"
        if not lock.exists():
            lock.touch(mode=0o644)
            shutil.chown(lock, "lp", "lp")
        return lock

    def set_queueing(self, enabled: bool) -> None:
        """Like `lpc disable/enable`: a disabled queue refuses new jobs (non-zero ack).

        This lpd forks a printer daemon after every job it receives, and that daemon's first
        act is `fchmod(lock, 0640)`, which clears the queueing bit (strace shows it, before its
        flock). A bit set while such a daemon is still starting is lost, so this waits until
        no lpd process but the long-lived printer daemon works in the spool, then checks that
        the bit stayed.
        """
        lock = self._lock()
        for _ in range(50):
            wait_until(self._spool_quiet, 10, "lpd's printer daemons settled")
            mode = lock.stat().st_mode & 0o777
            lock.chmod(mode & ~_LOCK_QUEUEING_OFF if enabled else mode | _LOCK_QUEUEING_OFF)
            time.sleep(0.05)
            if bool(lock.stat().st_mode & _LOCK_QUEUEING_OFF) != enabled and self._spool_quiet():
                return
        raise PeerError(f"lpd kept resetting its lock file (queueing {enabled})")

    def _spool_quiet(self) -> bool:
        """At most one lpd process has the spool as its working directory, the same for 60 ms."""
        seen = []
        for _ in range(3):
            seen.append(self._spool_workers())
            time.sleep(0.02)
        return len(seen[0]) <= 1 and seen[0] == seen[1] == seen[2]

    def _spool_workers(self) -> set[int]:
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(entry / "cwd") == str(self.spool):
                        found.add(int(entry.name))
        return found

    def wait_job(self, number: int, timeout: float = 10.0) -> ReceivedJob:
        """The job numbered `number` once its control file is in the spool."""
        pattern = f"cfA{number:03d}*"
        wait_until(lambda: any(self.spool.glob(pattern)), timeout, f"{pattern} in the spool")
        control_path = next(self.spool.glob(pattern))
        control = control_path.read_text()
        names = [line[1:] for line in control.splitlines() if line[:1].islower()]
        return ReceivedJob(control, [self.spool / name for name in dict.fromkeys(names)])

    def has_job(self, number: int) -> bool:
        return any(self.spool.glob(f"cfA{number:03d}*"))

    def clear_spool(self) -> None:
        for entry in self.spool.glob("[cdt]fA*"):
            entry.unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        return bool(self.pid) and alive(self.pid)


def available() -> bool:
    return os.path.exists(LPD) and find_program("unshare") is not None and is_root()


@contextlib.contextmanager
def running_bsd_lpd(printing: bool = False) -> Iterator[BsdLpd]:
    """A started lpd for the block; the test skips, saying why, where it cannot run."""
    if not available():
        pytest.skip("needs BSD lpd (package lpr), unshare and root (private mount namespace); "
                    + INSTALL_HINT)
    server = BsdLpd(printing=printing)
    try:
        server.start()
        yield server
    finally:
        server.stop()

